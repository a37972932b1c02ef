"""What a notification may not hold (SPEC "Notifications"): a link, a URL, an email
address, or any phone number but `notice.official_phone`. A message that holds one
reads like the phishing the breach's victims are warned about.

`hazard(text, official_phone)` names the first such thing in a text, or None. The
policy loader refuses every policy text a message shows (notice.sender, the voucher
product ids, the category names: redress/policy/tables.py), and rendering checks each
distinct message body again before anyone is told (redress/rules/notifications.py).

What counts, after NFKC normalisation (so that full-width `ｅｖｉｌ．ｃｏｍ` or
`０１０` read as what they show), Polars' and not Python's older one (redress/characters.py:
Python 3.11 leaves the outlined letters and digits U+1CCD6-U+1CCF9 as they are, which a
reader's phone shows as `A`-`Z` and `0`-`9`):
- a link: a scheme (`https://`, `mailto:`, `tel:`, ...), `www.`, an IPv4 address, or a
  domain-like `word.tld`: a letter or digit, a dot (or the ideographic full stop that
  browsers take for one) and two letters (`bit.ly/abc`, `evil-example.com`, `쿠팡.한국`);
  so `food_delivery`, `v1.2` or `Coupang Inc.` are not links;
- an email address: `@` between word characters;
- a phone number: 7 digits or more, each at most five separators (any character but a
  letter, a digit, `_` or a comma, and the letters typed as dashes and dots: `010 - 9999
  - 9999`, `010/9999/9999`, `010·9999·9999`, `010ㆍ9999ㆍ9999`, `010〜9999〜9999`) from
  the next, an optional `+` first: the fewest digits a Korean number
  has (a local 123-4567); a year (`2025`) or an amount with commas (`50,000`) is not
  one. The official phone, and the same digits spelt otherwise, are allowed;
- a phone number spelt in words: the same, once the Sino-Korean digit syllables
  (`공일공 구구구구 구구구구`), the CJK numerals (everyday and formal) and the letters and signs
  that show as a zero or a one are read as digits where they spell one (`_digits_read`),
  mixed with digits or not (`공1공-9999-구구구구`, `O1O-9O99-99O9`, `0l0-99l9-9l99`), with at
  least two digits so spelt;
  the official phone so spelt is allowed;
- an unprintable character (redress/rules/printable.py): a zero-width space or a
  bidirectional override can hide any of the above from this check (`evil<ZWSP>.com`
  shows as evil.com) while the reader sees it.
Short service numbers (114, 1588 alone) are not caught: too many ordinary words hold
three or four digits.
"""

from __future__ import annotations

import re

from redress.characters import nfkc
from redress.rules.printable import first_unprintable

_DOT = r"[.\u3002]"  # NFKC has made U+FF0E and U+FF61 into one of these
# Any character that is neither a letter, a digit nor `_` (kept for ids such as
# `order_2025_06_24`), nor the comma of an amount (`1,234,567`); and the letters people
# type as a dash or a dot between digits on Korean and Japanese keyboards: ㅡ, ㆍ (as NFKC
# leaves them, U+1173, U+119E, and as typed), ー, 一. Found by review: only a list of
# ASCII and two middle dots was taken, and `010ㆍ9999ㆍ9999`, `010•9999•9999`,
# `010〜9999〜9999`, `010∕9999∕9999`, `010|9999|9999` passed.
_SEPARATOR = r"(?:[^\w,]|[\u1173\u3161\u119e\u318d\u30fc\u4e00])"
_LINK = re.compile(
    rf"[^\W_][\w+.-]*:/|\b(?:mailto|tel|sms|smsto|callto|javascript|data|file|intent):"
    rf"|\bwww\d*{_DOT}|\d{{1,3}}(?:{_DOT}\d{{1,3}}){{3}}|[^\W_]{_DOT}[^\W\d_]{{2}}",
    re.IGNORECASE)
_EMAIL = re.compile(r"[\w.+-]@[\w-]")
_PHONE = re.compile(rf"\+?\(?\d(?:{_SEPARATOR}{{0,5}}\d){{6,}}")
# Digits spelt as words: the Sino-Korean syllables a number is read out in (`공일공`:
# 010) and the CJK numerals, everyday and formal (壹貳參...). Found by review: `Coupang
# 공일공 구구구구 구구구구` passed; then (the fix review) one mixing words and digits,
# `공1공-9999-구구구구`, and the letter O for a zero beside digits, `O1O-9O99-99O9`.
_WORD_DIGITS = {**dict.fromkeys("공영빵〇零", "0"), **dict.fromkeys("일一壹", "1"), **dict.fromkeys("이二貳贰", "2"),
                **dict.fromkeys("삼三參叁", "3"), **dict.fromkeys("사四肆", "4"), **dict.fromkeys("오五伍", "5"),
                **dict.fromkeys("육륙六陸陆", "6"), **dict.fromkeys("칠七柒", "7"), **dict.fromkeys("팔八捌", "8"),
                **dict.fromkeys("구九玖", "9")}
# Letters and signs that show as a zero: Latin, Cyrillic and Greek O, the Hangul ㅇ (as
# typed, and as NFKC leaves it), white and large circles (found by the fix review).
_ZEROS = "OoОоΟοㅇᄋ○◯"
# Letters that show as a one: Latin small l, capital I and dotless ı, the Greek capital
# iota, the Cyrillic palochka and І/і, the click letter ǀ. Not the vertical bar: it
# separates digits (`1|2|3` is no phone; found by the fix review). Read only where they
# stand among digits (`_digits_read`), never as words: `Hello`, `Cool`, `Ill` are words.
_ONES = "lIıΙӏІіǀ"
_AS_DIGITS = str.maketrans({**_WORD_DIGITS, **dict.fromkeys(_ZEROS, "0"), **dict.fromkeys(_ONES, "1")})
# A run of digit words and zero look-alikes, one next to the other.
_SPELT = re.compile(f"[{re.escape(''.join(_WORD_DIGITS) + _ZEROS)}]+")
# A run of one look-alikes.
_SPELT_ONES = re.compile(f"[{re.escape(_ONES)}]+")
# A digit then up to five separators at the end of a text, and at its start: a run of
# one look-alikes so placed stands among digits.
_DIGIT_BEFORE = re.compile(rf"\d{_SEPARATOR}{{1,5}}$")
_DIGIT_AFTER = re.compile(rf"{_SEPARATOR}{{1,5}}\d")
# A run this long is read as digits wherever it stands, joined to a word or not
# (`연락처공일공구구구구구구구구`); a shorter one only right beside a digit (`공1공`, `O1O`):
# two-syllable words are everyday words (`오일` oil, `공구` tools, `이사` moving, `OO` a
# name left out), and so is a `일` right after a number (`24일`: the 24th).
MIN_SPELT_RUN = 3
# A phone spelt so counts when at least this many of its digits were words or zeros:
# one alone is an ordinary word beside a number.
MIN_SPELT_DIGITS = 2


def _digits_read(text: str) -> str:
    """`text` with the digit words and zero look-alikes read as digits where they spell
    one (a run of MIN_SPELT_RUN or more, or one right beside a digit), then the one
    look-alikes right beside a digit (`0l0-99l9-9l99`), one character for one, so that
    a match's place is its place in `text`. Found by the fix reviews: read
    one syllable at a time, `여행 2025-06 이용권` was a phone; read only as whole words,
    `공일공ㆍ구구구구ㆍ구구구구` (the Korean keyboard's dot is a letter) and
    `공일공구구구구구구구구로` (a particle joined to it) were not."""
    def read(run: re.Match) -> str:
        spelt = run.group()
        after = run.start() > 0 and text[run.start() - 1].isdecimal()
        before = run.end() < len(text) and text[run.end()].isdecimal()
        day = spelt == "일" and after  # `24일`: the 24th
        if len(spelt) >= MIN_SPELT_RUN or ((after or before) and not day):
            return spelt.translate(_AS_DIGITS)
        return spelt

    def read_ones(run: re.Match) -> str:
        before, after = words[:run.start()], words[run.end():]
        beside = before[-1:].isdecimal() or after[:1].isdecimal()
        # or a group of their own between separators, digits on both sides, of one
        # character (found by the fix review: `010-llll-5678`, `0 l 0 - 9 9 l 9`; a word
        # mixing them, `Ill` or `Il`, is a word: found by the property below's search,
        # `1577-7011 Ill 0` read as a phone)
        among = (len(set(run.group())) == 1 and bool(_DIGIT_BEFORE.search(before))
                 and bool(_DIGIT_AFTER.match(after)))
        return run.group().translate(_AS_DIGITS) if beside or among else run.group()

    words = _SPELT.sub(read, text)
    return _SPELT_ONES.sub(read_ones, words)


def _token(text: str, match: re.Match) -> str:
    """The run of non-space characters `match` lies in: what a reader would tap."""
    start = max(text.rfind(" ", 0, match.start()), text.rfind("\n", 0, match.start())) + 1
    end = re.search(r"\s|$", text[match.end():]).start() + match.end()
    return text[start:end]


def _quoted(fragment: str) -> str:
    shown = repr(fragment)
    return shown if len(shown) <= 60 else shown[:57] + "..."


def hazard(text: str, official_phone: str = "") -> str | None:
    """What in `text` a message may not hold, said for a one-line error ("a phone number
    '010-9999-9999'", "a link 'bit.ly/abc'"), or None. A phone number with the digits of
    `official_phone` is allowed."""
    char = first_unprintable(text)
    if char is not None:
        return f"an unprintable character U+{ord(char):04X}"
    text = nfkc(text)
    if email := _EMAIL.search(text):
        return f"an email address {_quoted(_token(text, email))}"
    if link := _LINK.search(text):
        return f"a link {_quoted(_token(text, link))}"
    official = re.sub(r"\D", "", official_phone)
    # digits as written, then with the spelt ones read (`_digits_read`: the same places)
    for read, fewest_spelt, kind in ((text, 0, "a phone number"),
                                     (_digits_read(text), MIN_SPELT_DIGITS, "a phone number spelt in words")):
        for phone in _PHONE.finditer(read):
            written = text[phone.start():phone.end()]
            spelt = sum(a != b for a, b in zip(phone.group(), written))
            if spelt >= fewest_spelt and re.sub(r"\D", "", phone.group()) != official:
                return f"{kind} {_quoted(written.strip())}"
    return None
