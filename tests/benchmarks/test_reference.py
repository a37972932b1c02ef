"""The benchmark's reference (benchmarks/reference.sql) makes redress's decisions.

A ratio against a reference that decides differently means nothing, so on a small
generated breach the reference's customers and won per entitlement reason, payments
and won per rail and scope rows per destination must equal a real run's warehouse: on
a first run, after a 1% revision (top-ups and first payments), and under a capped fund
with tiers (pro rata, BELOW_MINIMUM).
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import sys
from datetime import date
from pathlib import Path

import duckdb
import pytest

import reference
import run_benchmark
from redress.generate import DEFECTS, MALFORMED, generate
from approval_off import DEFAULT_POLICY  # the shipped policy, require_approval = false

CUSTOMERS = 2_000
TIERED = Path(__file__).resolve().parents[2] / "policies" / "tiered-capped-example.toml"


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("generated")
    generate(out, CUSTOMERS, seed=11)
    return out


def data_folder(generated: Path, tmp_path: Path) -> Path:
    """A fresh data folder holding a copy of the generated inbox and manifest."""
    data = tmp_path / "data"
    shutil.copytree(generated / "inbox", data / "inbox")
    shutil.copy(generated / "generated.json", data / "generated.json")
    return data


def run_redress(data: Path, policy: Path) -> None:
    from flows.remediation import remediation

    remediation(data_dir=data, policy_path=policy, run_date=date(2025, 12, 1))


def figures_of(rows: list[list]) -> dict[tuple[str, str], tuple[int, int | None]]:
    return {(m, k): (n, a) for m, k, n, a in rows}


def test_reference_equals_a_first_run_and_a_revision(generated, tmp_path):
    data = data_folder(generated, tmp_path)
    planted = json.loads((data / "generated.json").read_text())

    first = reference.reference(data, DEFAULT_POLICY)
    run_redress(data, DEFAULT_POLICY)
    assert run_benchmark.differences(first["figures"], run_benchmark.redress_figures(data)) == []

    # the figures are about the planted breach, not an empty agreement
    figures = figures_of(first["figures"])
    assert first["files"] == {"read": 3, "duplicate": 1, "unreadable": 1}
    for kind in [*DEFECTS, MALFORMED]:
        assert figures[("destination", f"quarantine:{kind}")][0] == planted[kind] > 0, kind
    assert figures[("destination", "review:ambiguous_identifier")][0] == planted["ambiguous_rows"]
    assert figures[("destination", "non_member")][0] == planted["non_member_rows"]
    assert figures[("reason", "TEST_ACCOUNT")][0] == planted["test_accounts"]
    rails = {k: v for (m, k), v in figures.items() if m == "rail"}
    assert set(rails) == {"bank_transfer", "claim", "voucher"}
    assert sum(n for n, _ in rails.values()) == figures[("reason", "ELIGIBLE")][0]
    assert sum(a for _, a in rails.values()) == figures[("reason", "ELIGIBLE")][1] > 0

    added = run_benchmark.write_revision(data, seed=11, policy=DEFAULT_POLICY)
    assert added == -(-sum(planted["scope_rows"][f] for f in planted["scope_rows"]
                           if f not in planted["files"]["duplicate"]) // 100)
    revised = reference.reference(data, DEFAULT_POLICY)
    run_redress(data, DEFAULT_POLICY)
    assert run_benchmark.differences(revised["figures"], run_benchmark.redress_figures(data),
                                     payments_by_amount_only=True) == []
    # the revision paid new people: more ELIGIBLE customers, more won
    before, after = figures[("reason", "ELIGIBLE")], figures_of(revised["figures"])[("reason", "ELIGIBLE")]
    assert after[0] > before[0] and after[1] > before[1]


def test_reference_equals_a_run_under_a_capped_fund_with_tiers(generated, tmp_path):
    data = data_folder(generated, tmp_path)
    # a fund small enough that pro rata scales every amount and pushes tier 1 below the minimum
    policy = tmp_path / "capped.toml"
    policy.write_text(TIERED.read_text().replace("total_cap = 500000000000", "total_cap = 40000000")
                      .replace("1 = 20000", "1 = 8000"))

    ref = reference.reference(data, policy)
    run_redress(data, policy)
    assert run_benchmark.differences(ref["figures"], run_benchmark.redress_figures(data)) == []

    figures = figures_of(ref["figures"])
    assert figures[("reason", "BELOW_MINIMUM")][0] > 0
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        scaled = con.execute("""SELECT count(*) FROM entitlements
                                WHERE reason = 'ELIGIBLE' AND amount < base_amount""").fetchall()[0][0]
        tiers = con.execute("SELECT count(DISTINCT tier) FROM entitlements WHERE reason = 'ELIGIBLE'").fetchall()[0][0]
    assert scaled == figures[("reason", "ELIGIBLE")][0]  # every payment scaled down
    assert tiers >= 2


def fullwidth(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


def test_reference_equals_a_run_on_unicode_identifiers(generated, tmp_path):
    """The reference's slow paths (Unicode trim, fullwidth forms, A-Z-only lowering):
    the generator writes ASCII only, so a file of its customers' identifiers in other
    forms is added."""
    data = data_folder(generated, tmp_path)
    with duckdb.connect() as con:
        people = con.execute("""SELECT email, phone FROM read_parquet(?, hive_partitioning = false)
                                WHERE email IS NOT NULL
                                AND phone IS NOT NULL ORDER BY customer_id LIMIT 6""",
                             [str(next((data / "inbox" / "customers").iterdir()))]).fetchall()
    nbsp, ideographic = "\u00a0", "\u3000"
    rows = [
        (fullwidth(people[0][0].strip()), ""),                      # ＠ and fullwidth letters
        (f"{ideographic}{people[1][0].strip().upper()}{nbsp}", ""),  # padded, upper case
        ("", fullwidth(people[2][1])),                               # fullwidth digits
        ("", f"{nbsp}{people[3][1]}{ideographic}"),
        ("İ" + people[4][0].strip(), ""),                         # not A-Z: kept, so nobody's
        (f"{nbsp}{ideographic}", f"{ideographic}"),                  # blank: missing_identifier
    ]
    lines = ["email,phone,data_category,accessed_at"] + [
        f"{e},{p},entrance_code,2025-08-01T10:00:00+09:00" for e, p in rows]
    (data / "inbox" / "scope" / "scope_09_unicode.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")

    ref = reference.reference(data, DEFAULT_POLICY)
    run_redress(data, DEFAULT_POLICY)
    assert run_benchmark.differences(ref["figures"], run_benchmark.redress_figures(data)) == []
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        matched = con.execute("""SELECT matched_by, count(*) FROM scope_exposures e JOIN ingested_files f
                                 USING (file_sha256) WHERE f.file_name = 'scope_09_unicode.csv'
                                 GROUP BY ALL ORDER BY 1""").fetchall()
    assert matched == [("email", 2), ("phone", 2)]


@pytest.mark.parametrize("change", [
    lambda f: f.__setitem__(0, ["reason", "ELIGIBLE", 9, 450]),     # a count
    lambda f: f.__setitem__(1, ["rail", "voucher", 9, 449]),        # an amount
    lambda f: f.pop(2),                                              # a figure missing
    lambda f: f.append(["destination", "review:checks_disagree", 1, None]),  # one extra
])
def test_differences_names_the_figure_that_differs(change):
    ours = [["reason", "ELIGIBLE", 10, 500], ["rail", "voucher", 9, 450], ["destination", "exposure", 30, None]]
    theirs = [list(f) for f in ours]
    change(theirs)
    assert run_benchmark.differences(ours, ours) == []
    lines = run_benchmark.differences(ours, theirs)
    assert len(lines) == 1


def test_top_ups_compare_by_amount_after_a_revision():
    ours = [["rail", "voucher", 9, 450]]
    theirs = [["rail", "voucher", 10, 450]]  # one customer paid twice: first payment and top-up
    assert run_benchmark.differences(ours, theirs, payments_by_amount_only=True) == []
    assert run_benchmark.differences(ours, [["rail", "voucher", 10, 460]], payments_by_amount_only=True) != []


def test_a_reused_benchmark_folder_keeps_only_its_inbox_and_manifest(generated, tmp_path):
    """Reusing --out removes every earlier output, those a later version adds included:
    exports/ left behind matched the new warehouse, so the second benchmark on a folder
    skipped writing them and looked faster than it was."""
    data = data_folder(generated, tmp_path)
    (data / run_benchmark.MARKER).write_text("")  # as the benchmark's generation leaves it
    inbox = sorted(p.relative_to(data) for p in (data / "inbox").rglob("*"))
    (data / "inbox" / "scope" / run_benchmark.REVISION_FILE).write_bytes(b"PAR1")
    for folder in ("exports/ledger", "outbox/batches", "work/R1", "warehouse.duckdb.tmp", "a_future_output"):
        (data / folder).mkdir(parents=True)
        (data / folder / "f.parquet").write_bytes(b"x")
    for name in ("warehouse.duckdb", "warehouse.duckdb.wal"):
        (data / name).write_bytes(b"x")
    manifest = run_benchmark.prepare(data, CUSTOMERS, seed=11)
    assert manifest["customers"] == CUSTOMERS
    assert sorted(p.name for p in data.iterdir()) == [run_benchmark.MARKER, "generated.json", "inbox"]
    assert sorted(p.relative_to(data) for p in (data / "inbox").rglob("*")) == inbox


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("case", ["demo folder", "other size", "other seed", "manifest not JSON",
                                  "manifest edited"])
def test_a_folder_the_benchmark_did_not_generate_for_this_case_is_refused_and_left_alone(generated, tmp_path,
                                                                                         capsys, monkeypatch, case):
    """`redress demo` and `redress generate` write an inbox and generated.json too, and a
    person's folder holds their own files: the benchmark empties or removes only a folder
    it generated itself (its marker), for the same customers and seed, and otherwise stops
    in one line having touched nothing."""
    data = data_folder(generated, tmp_path)
    (data / "my notes").mkdir()
    (data / "my notes" / "keep.txt").write_text("mine")
    (data / "warehouse.duckdb").write_bytes(b"a warehouse")
    customers, seed = CUSTOMERS, 11
    if case != "demo folder":
        (data / run_benchmark.MARKER).write_text("")
        customers, seed = {"other size": (CUSTOMERS + 1, 11), "other seed": (CUSTOMERS, 12)}.get(case, (CUSTOMERS, 11))
        if case == "manifest not JSON":
            (data / "generated.json").write_text("{not json")
        if case == "manifest edited":  # the right size and seed, the rest gone: nothing emptied
            (data / "generated.json").write_text(f'{{"customers": {CUSTOMERS}, "seed": 11}}')
    before = tree(data)
    monkeypatch.setattr("sys.argv", ["run_benchmark.py", "--customers", str(customers), "--seed", str(seed),
                                     "--out", str(data)])
    with pytest.raises(SystemExit) as stopped:
        run_benchmark.main()
    message = str(stopped.value.code)
    assert message.startswith(f"benchmark: {data}") and "\n" not in message and "choose another --out" in message
    assert tree(data) == before


def test_a_generated_folder_carries_the_marker_and_is_reused(tmp_path):
    out = tmp_path / "fresh"
    first = run_benchmark.prepare(out, 300, seed=5)
    assert (out / run_benchmark.MARKER).is_file()
    (out / "warehouse.duckdb").write_bytes(b"x")
    assert run_benchmark.prepare(out, 300, seed=5) == first
    assert sorted(p.name for p in out.iterdir()) == [run_benchmark.MARKER, "generated.json", "inbox"]


def test_without_the_reference_the_table_has_no_ratio_and_the_figures_are_redress_own(generated, tmp_path, capsys):
    """--no-reference (a case whose reference does not fit the machine, 150M here): the
    table says so instead of a ratio, and the figures printed are the warehouse's."""
    data = data_folder(generated, tmp_path)
    run_redress(data, DEFAULT_POLICY)
    run = {"stages": [("ingest inbox", 1.0, 2.0)], "flow_seconds": 2.0, "seconds": 3.0, "peak_mb": 4.0, "cpu_seconds": 5.0}
    text = run_benchmark.table("full run", None, run)
    assert "reference not run" in text and "redress/reference" not in text and "redress total" in text
    capsys.readouterr()
    figures = run_benchmark.redress_figures(data)
    run_benchmark.print_figures(figures)
    printed = capsys.readouterr().out
    ref = reference.reference(data, DEFAULT_POLICY)["figures"]  # the same figures, decided independently
    for kind, key, count, amount in ref:
        if kind != "destination":
            assert f"{key:<22} {count:>12,}" + (f" {amount:>18,} won" if amount is not None else "") in printed


def test_whatif_is_timed_over_three_policies_with_its_peak_and_cpu(generated, tmp_path, capsys):
    """--whatif: `redress whatif` of the shipped policy and the two variants, in a child
    of its own, after a run; one line with its wall seconds, peak and CPU seconds."""
    data = data_folder(generated, tmp_path)
    run_redress(data, DEFAULT_POLICY)
    folder = tmp_path / "bench"
    folder.mkdir()
    capsys.readouterr()
    run_benchmark.run_whatif(data, CUSTOMERS, run_benchmark.child_env(tmp_path / "home"), folder)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "whatif of 3 policies"
    fields = lines[1].split()
    assert fields[:3] == ["redress", "whatif", "total"] and fields[4:6] == ["s", "peak"] and fields[7] == "MB"
    assert fields[8] == "CPU" and fields[10] == "s"
    seconds, peak, cpu = float(fields[3]), float(fields[6].replace(",", "")), float(fields[9].replace(",", ""))
    assert seconds > 0 and peak > 50 and cpu > 0.5  # a Python process with Polars and DuckDB, and a server
    assert sorted(p.name for p in folder.glob("*.toml")) == ["capped.toml", "tiered.toml"]
    assert "whatif" in (folder / "whatif.log").read_text().lower()


def test_a_revision_without_the_reference_is_refused_before_anything_runs(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr("sys.argv", ["run_benchmark.py", "--no-reference", "--revision", "--out", str(tmp_path / "b")])
    with pytest.raises(SystemExit) as stopped:
        run_benchmark.main()
    assert stopped.value.code == 2 and "--revision is measured against the reference" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()  # nothing generated


def test_the_table_gives_each_side_s_cpu_the_cpu_ratio_and_the_floor_of_the_wall_ratio():
    """CPU seconds say how much work each side did, whatever the machine's other load;
    with two cores, redress's 510 CPU seconds could not take less than 255 s of wall time,
    6.38 times the reference's 40 s, however its work were scheduled."""
    run = {"stages": [("ingest inbox", 100.0, 5_400.0), ("approve", 50.0, None)], "flow_seconds": 250.0,
           "seconds": 300.0, "peak_mb": 6000.0, "cpu_seconds": 510.0}
    ref = {"seconds": 40.0, "peak_mb": 5000.0, "cpu_seconds": 70.0, "sql_seconds": 38.0, "figures": []}
    lines = run_benchmark.table("full run", ref, run, cores=2).splitlines()
    # each stage's peak beside its seconds; n/a where the kernel gave none (benchmarks/peaks.py)
    assert lines[1:4] == ["  stage                      seconds   peak MB",
                          "  ingest inbox                 100.0     5,400",
                          "  approve                       50.0       n/a"]
    assert lines[-4] == "  redress total                300.0 s   peak    6,000 MB   CPU     510.0 s (1.70 cores busy)"
    assert lines[-3] == ("  reference total               40.0 s   peak    5,000 MB   CPU      70.0 s (1.75 cores busy)"
                         "   (SQL 38.0 s)")
    assert lines[-2] == "  ratio redress/reference       7.50   (flow run / reference: 6.25)"
    assert lines[-1] == "  CPU ratio                     7.29   (floor of the ratio with all 2 cores busy: 6.38)"
    alone = run_benchmark.table("full run", None, run, cores=2)
    assert "CPU     510.0 s (1.70 cores busy)" in alone and "CPU ratio" not in alone


def test_a_child_s_cpu_seconds_include_the_children_it_waited_for(tmp_path):
    """redress's CPU seconds must count its Prefect server, a child it starts and waits
    for: a child that only waits for a grandchild burning CPU is charged about what the
    grandchild alone is."""
    env = run_benchmark.child_env(tmp_path / "home")
    burn = "sum(range(40_000_000))"
    alone = run_benchmark.run_child([sys.executable, "-c", burn], env, tmp_path / "alone.log")
    waiting = run_benchmark.run_child(
        [sys.executable, "-c", f"import subprocess, sys; subprocess.run([sys.executable, '-c', {burn!r}], check=True)"],
        env, tmp_path / "waiting.log")
    assert alone.cpu_seconds > 0.3  # the burn is real work
    assert waiting.cpu_seconds >= 0.8 * alone.cpu_seconds
    assert alone.seconds > 0 and alone.peak_mb > 1 and alone.text == ""


@pytest.fixture
def no_runs(monkeypatch):
    """run_benchmark.main with its two children replaced by fixed figures: the folder
    handling alone, on a real (small) generation."""
    run = {"stages": [("ingest inbox", 1.0, 2.0)], "flow_seconds": 2.0, "seconds": 3.0, "peak_mb": 4.0, "cpu_seconds": 5.0}
    monkeypatch.setattr(run_benchmark, "run_reference",
                        lambda *a: {"seconds": 1.0, "peak_mb": 1.0, "cpu_seconds": 1.0, "sql_seconds": 1.0,
                                   "figures": []})
    monkeypatch.setattr(run_benchmark, "run_redress", lambda *a: dict(run))
    monkeypatch.setattr(run_benchmark, "compare", lambda *a, **k: True)
    monkeypatch.setattr(run_benchmark, "prepare_prefect", lambda *a: 0.0)

    def main(*argv: str) -> int:
        monkeypatch.setattr("sys.argv", ["run_benchmark.py", "--customers", "300", *argv])
        return run_benchmark.main()
    return main


def test_without_keep_only_what_the_benchmark_made_is_removed(no_runs, tmp_path):
    nested = tmp_path / "new" / "a" / "b"
    assert no_runs("--out", str(nested)) == 0
    assert sorted(tmp_path.iterdir()) == []  # the parents it created go too
    mine = tmp_path / "mine"
    mine.mkdir()
    assert no_runs("--out", str(mine)) == 0
    assert mine.is_dir() and sorted(mine.iterdir()) == []  # a folder the user made: emptied, kept
    kept = tmp_path / "kept"
    assert no_runs("--out", str(kept), "--keep") == 0
    assert (kept / run_benchmark.MARKER).is_file()
    assert no_runs("--out", str(kept)) == 0  # its own folder, reused, then removed
    assert not kept.exists()


@pytest.mark.parametrize("case", ["link", "file"])
def test_a_link_or_a_file_as_out_is_refused_and_left_alone(no_runs, tmp_path, capsys, case):
    target = tmp_path / "target"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    out = tmp_path / "out"
    out.symlink_to(target) if case == "link" else out.write_text("a file")
    with pytest.raises(SystemExit) as stopped:
        no_runs("--out", str(out))
    said = str(stopped.value.code) if case == "file" else capsys.readouterr().err.strip()
    assert said == (f"benchmark: {out} is a symbolic link: give the folder itself" if case == "link"
                    else f"benchmark: {out} is not a folder: choose another --out")
    assert (target / "keep.txt").read_text() == "mine" and sorted(target.iterdir()) == [target / "keep.txt"]
    assert out.is_symlink() if case == "link" else out.read_text() == "a file"


def test_first_missing_is_the_outermost_folder_to_create(tmp_path):
    assert run_benchmark._first_missing(tmp_path) is None
    assert run_benchmark._first_missing(tmp_path / "a" / "b") == tmp_path / "a"


def test_prefect_s_database_is_created_before_anything_is_timed(tmp_path):
    """prepare_prefect leaves Prefect's database in the benchmark's PREFECT_HOME with every
    migration applied, so the timed run's server finds it as on a machine redress ran
    on before."""
    home = tmp_path / "prefect-home"
    home.mkdir()
    seconds = run_benchmark.prepare_prefect(run_benchmark.child_env(home), tmp_path / "prefect.log")
    assert seconds > 0
    with sqlite3.connect(home / "prefect.db") as db:
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        (version,) = db.execute("SELECT version_num FROM alembic_version").fetchone()
    assert {"flow", "flow_run", "task_run", "alembic_version"} <= tables and version
