"""The colours that tell a chart's series apart (redress/reports/run_charts.py,
redress/whatif/output.py), for readers who do not tell red from green (found by the
accessibility review: settled and returned, gain and lose looked alike under
deuteranopia): every pair stays apart as seen with protanopia and deuteranopia
(Viénot, Brettel and Mollon's simulation, 1999) and with normal sight, and every colour
stands at least 3:1 against the white page (WCAG 2.1's contrast for graphics)."""

from __future__ import annotations

import itertools

import pytest

from redress.reports.run_charts import FUNNEL_COLOURS, PARTS_PALETTE, TREASURY_COLOURS
from redress.whatif.output import CHANGE_COLOURS

# Linear-RGB matrices of the simulation: each row is what one cone sees.
SIGHT = {"normal": [[1, 0, 0], [0, 1, 0], [0, 0, 1]],
         "protanopia": [[0.11238, 0.88762, 0], [0.11238, 0.88762, 0], [0.00401, -0.00401, 1]],
         "deuteranopia": [[0.29275, 0.70725, 0], [0.29275, 0.70725, 0], [-0.02234, 0.02234, 1]]}
PALETTES = {"ledger parts": PARTS_PALETTE, "funnel": FUNNEL_COLOURS, "treasury": TREASURY_COLOURS,
            "what-if changes": CHANGE_COLOURS}
APART = 15  # CIE76 difference; 2.3 is just noticeable


def linear(colour: str) -> list[float]:
    channels = [int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    return [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]


def luminance(rgb: list[float]) -> float:
    return 0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2]


def lab(rgb: list[float]) -> tuple[float, float, float]:
    x = (0.4124 * rgb[0] + 0.3576 * rgb[1] + 0.1805 * rgb[2]) / 0.95047
    y = luminance(rgb)
    z = (0.0193 * rgb[0] + 0.1192 * rgb[1] + 0.9505 * rgb[2]) / 1.08883

    def f(t: float) -> float:
        return t ** (1 / 3) if t > 0.008856 else 7.787 * t + 16 / 116

    return 116 * f(y) - 16, 500 * (f(x) - f(y)), 200 * (f(y) - f(z))


def seen(colour: str, sight: str) -> list[float]:
    rgb = linear(colour)
    return [sum(m * c for m, c in zip(row, rgb)) for row in SIGHT[sight]]


@pytest.mark.parametrize("sight", SIGHT)
@pytest.mark.parametrize("name", PALETTES)
def test_every_two_colours_of_a_chart_stay_apart(name, sight):
    for a, b in itertools.combinations(PALETTES[name], 2):
        difference = sum((p - q) ** 2 for p, q in zip(lab(seen(a, sight)), lab(seen(b, sight)))) ** 0.5
        assert difference >= APART, (name, sight, a, b, round(difference, 1))


@pytest.mark.parametrize("name", PALETTES)
def test_every_colour_stands_out_against_the_page(name):
    for colour in PALETTES[name]:
        assert (1.05) / (luminance(linear(colour)) + 0.05) >= 3, (name, colour)


def test_the_simulation_tells_the_old_palette_apart_from_the_new():
    """The test can fail: tableau10's settled and returned, as the review saw them."""
    old = [seen(c, "deuteranopia") for c in ("#54a24b", "#e45756")]
    assert sum((p - q) ** 2 for p, q in zip(lab(old[0]), lab(old[1]))) ** 0.5 < APART
