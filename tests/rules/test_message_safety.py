"""redress/rules/message_safety.py: what a notification may not hold (SPEC "Notifications"):
a link, an email address, or a phone number but the official one."""

from __future__ import annotations

import functools

import polars as pl
import pytest
from hypothesis import example, given, strategies as st

from redress.rules.message_safety import hazard

OFFICIAL = "1577-7011"


def outlined(text: str) -> str:
    """`text` with its capital letters and digits written as the outlined ones of Unicode
    16 (U+1CCD6-U+1CCF9), which a phone shows as letters and digits in outline."""
    return "".join(chr(0x1CCD6 + ord(c) - 65) if "A" <= c <= "Z" else chr(0x1CCF0 + ord(c) - 48) if c.isdigit()
                   else c for c in text)


@pytest.mark.parametrize("text", [
    "Coupang", "쿠팡", "Coupang Inc.", "Coupang (쿠팡)", "Coupang Corp. Korea", "Coupang 2025", "e.g. this",
    "shopping", "food_delivery", "travel-2025", "v1.2", "order_history_2025_06_24", "entrance_code",
    "보상금 1,234,567원이 입금됩니다.", "문의: 고객센터 1577-7011 (참조번호 ABCDEFGH)",
    "1577-7011", "15777011", "1577 7011", "Coupang 1588",
    "일오칠칠 칠공일일", "이메일, 전화번호, 주소", "사이 오사카 이사 일이 삼사", "2027년 1월 31일까지", "구매 이력",
    "COUPANG 2025", "DONE 1OO", "Room 1O1",
    # found by the next fix review: read syllable by syllable, words beside digits were phones
    "여행 2025-06 이용권", "고객센터 1577-7011 이용 시간", "문의: 고객센터 1577-7011 (일~금)", "1577-7011 일요일 휴무",
    "2025.06 이용권", "PO123456", "○ 1577-7011 안내",
    # and (the third) two-syllable words of digit syllables, placeholders for a name, days
    "OO 1577-7011", "여행 ○○ 1577-7011", "ㅇㅇ 1577-7011", "오일 2025-06", "여행 공구 2025-06",
    "여행 이용권 6/24일 ~ 7/1일", "이사 1577-7011", "2025-06이용권",
    # the one look-alikes are words away from digits, and the official phone so spelt
    "Hello 2025-06", "Cool 1577-7011", "Ill 1577-7011", "I | 2025-06", "l577-70ll", "Il 2025-06",
    # the bar separates digits, and roman numerals are words (found by the fix review)
    "등급 1|2|3 : 10,000원", "1|2|3|4 단계", "Phase III 2025-06",
])
def test_ordinary_texts_and_the_official_phone_pass(text):
    assert hazard(text, OFFICIAL) is None


@pytest.mark.parametrize("text, kind", [
    ("Coupang 010-9999-9999 bit.ly/abc", "a link 'bit.ly/abc'"),
    ("www.evil-example.com", "a link 'www.evil-example.com'"),
    ("evil-example.com", "a link"),
    ("Coupang https://x", "a link 'https://x'"),
    ("HTTP://X", "a link"),
    ("tel:01099999999", "a link"),
    ("javascript:alert(1)", "a link"),
    ("10.0.0.1", "a link '10.0.0.1'"),
    ("쿠팡.한국", "a link"),
    ("evil。com", "a link"),                       # the ideographic full stop browsers read as a dot
    ("ｅｖｉｌ．ｃｏｍ", "a link 'evil.com'"),          # full width, as NFKC reads it
    ("help@coupang", "an email address 'help@coupang'"),
    ("call 010-9999-9999", "a phone number '010-9999-9999'"),
    ("01099999999", "a phone number"),
    ("+82 10 9999 9999", "a phone number '+82 10 9999 9999'"),
    ("(02) 123-4567", "a phone number"),
    # the fewest digits a number has, a local 123-4567 (found by the mutation review: untested)
    ("전화 123-4567 로 연락", "a phone number '123-4567'"), ("1234567", "a phone number '1234567'"),
    ("０１０-９９９９-９９９９", "a phone number '010-9999-9999'"),
    ("1577-7011-1", "a phone number '1577-7011-1'"),   # the official digits and more
    # found by review: separators a reader still reads as one number
    ("Coupang 010 - 9999 - 9999", "a phone number '010 - 9999 - 9999'"),
    ("Coupang, call 010  -  9999  -  9999", "a phone number '010  -  9999  -  9999'"),
    ("010/9999/9999", "a phone number '010/9999/9999'"),
    ("010·9999·9999", "a phone number '010·9999·9999'"),
    ("010~9999~9999", "a phone number '010~9999~9999'"),
    # found by the next review: separators beyond a list (keyboard middle dots, bullets,
    # slash and tilde look-alikes, ASCII punctuation)
    *((f"010{s}9999{s}9999", "a phone number '010")  # named as NFKC reads it (ㆍ as U+119E)
      for s in ("\u318d", "\u2022", "\u2219", "\u22c5", "\u2027", "\u2e31", "\u2044", "\u2215", "\u29f8",
                "\u301c", "\u223c", "\u02dc", ":", "*", "#", "|", "\u3161", "\u30fc")),
    ("evil\u200b.com", "an unprintable character U+200B"),  # shown as evil.com
    # found by review: a number spelt in Sino-Korean digit syllables, or CJK numerals
    ("Coupang 공일공 구구구구 구구구구", "a phone number spelt in words '공일공 구구구구 구구구구'"),
    ("쿠팡 공일공-구구구구-구구구구", "a phone number spelt in words '공일공-구구구구-구구구구'"),
    ("쿠팡 영일영 구구구구 팔팔팔팔", "a phone number spelt in words"),
    ("〇一〇九九九九九九九九", "a phone number spelt in words"),
    # found by the fix review: words and digits mixed, formal numerals, the letter O for zero
    *((text, "a phone number spelt in words") for text in (
        "쿠팡 010-구구구구-9999", "쿠팡 공일공 9999 구구구구", "공1공-구999-9구99", "零壹零 玖玖玖玖 玖玖玖玖",
        "０１０ 구구구구 ９９９９", "Coupang O1O-9O99-99O9",
        # and (the next fix review) the other letters and signs that show as a zero
        "Coupang О1О-9О9О-9О9О", "Ο1Ο-9Ο9Ο-9Ο9Ο", "쿠팡 ㅇ1ㅇ-9ㅇ9ㅇ-9ㅇ9ㅇ", "쿠팡 ○1○-9○9○-9○9○",
        # and (the third) the Korean keyboard's dash and dot between words, a particle or a
        # label joined to the number
        "공일공ㆍ구구구구ㆍ구구구구", "공일공ㅡ구구구구ㅡ구구구구", "공일공구구구구구구구구로 전화", "문의공일공구구구구구구구구",
        "연락처는공일공구구구구구구구구", "Tel공일공구구구구구구구구",
        # and the letters and signs that show as a one, beside digits (left by session 57)
        "0l0-99l9-9l99", "Coupang 0I0-99I9-9I99", "ΟΙΟ-9Ι99-99Ι9", "0ӏ0 99ӏ9 9ӏ99",
        # and (the fix review) a group of them between separators, Cyrillic І/і, dotless ı, spaced out
        "문의: 010-llll-5678", "call 010-IIII-2345", "0І0-99І9-9І99", "0і0-99і9-9і99", "0ı0-99ı9-9ı99",
        "0 l 0 - 9 9 l 9 - 9 l 9 9",
        "공일공l구구구구구구구구")),
    ("\u3164", "an unprintable character U+3164"),  # the Hangul filler: a label that shows blank
    ("Coupang\u3164\u3164", "an unprintable character U+3164"),
    ("Coupang\u202e", "an unprintable character U+202E"),
    ("Coupang\nbit", "an unprintable character U+000A"),
    # Unicode since 14, Python 3.11's: NFKC and format characters as Polars reads them
    # (redress/characters.py); Python's own NFKC passed all three
    (outlined("EVIL.COM"), "a link 'EVIL.COM'"),
    (outlined("CALL 010-9999-9999"), "a phone number '010-9999-9999'"),
    ("evil\U00013439.com", "an unprintable character U+13439"),
])
def test_links_emails_other_phones_and_hiding_characters_are_named(text, kind):
    found = hazard(text, OFFICIAL)
    assert found is not None and found.startswith(kind), found
    assert "\n" not in found


def test_without_an_official_phone_every_phone_is_named():
    assert hazard("1577-7011") == "a phone number '1577-7011'"


@functools.cache
def _disguises() -> dict[str, list[str]]:
    """Each ASCII letter, digit and the characters links and numbers are made of, with
    every other character that NFKC (Polars': the engines' Unicode) makes into it alone
    and that prints: full-width, outlined, mathematical, circled, superscript forms..."""
    every = pl.Series("c", [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF])
    found = (pl.DataFrame({"c": every, "n": every.str.normalize("NFKC")})
             .filter((pl.col("c") != pl.col("n")) & pl.col("n").str.contains(r"^[A-Za-z0-9.@/:+\-]$")
                     & ~pl.col("c").str.contains(r"[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]"))
             .group_by("n").agg(pl.col("c").sort()).sort("n"))
    return dict(zip(found["n"], found["c"]))


TEXTS = ["Coupang 010-9999-9999 bit.ly/abc", "www.evil-example.com", "Coupang https://x", "tel:01099999999",
         "10.0.0.1", "help@coupang", "+82 10 9999 9999", "1577-7011-1", "Coupang Inc.", "v1.2", "Coupang 2025",
         "문의: 고객센터 1577-7011 (참조번호 ABCDEFGH)", "보상금 1,234,567원이 입금됩니다."]


@given(text=st.sampled_from(TEXTS), data=st.data())
def test_a_text_written_in_characters_nfkc_reads_as_its_own_gets_its_verdict(text, data):
    """The kind, not the examples above: whatever of a text's letters, digits, dots, @,
    slashes, colons, pluses and hyphens are written as other characters that NFKC reads
    as them (in the engines' Unicode), the check says of it what it says of the text
    itself, naming what it found as the reader sees it."""
    table = _disguises()
    disguised = "".join(data.draw(st.sampled_from([c, *table[c]]), label=c) if c in table else c for c in text)
    assert hazard(disguised, OFFICIAL) == hazard(text, OFFICIAL)


WORDS = ["이용", "일요일", "오늘", "사용", "구매", "공지", "영수증", "삼성", "칠월", "팔월", "이메일", "구독", "육아", "오후",
         "사은품", "일정", "이벤트", "Coupang", "Room", "PO", "쿠팡", "고객센터", "이용권", "여행", "(일~금)", "안내",
         "오일", "공구", "이사", "OO", "○○", "ㅇㅇ", "24일", "6/24일", "사이", "구구단",
         # not a lone `I` or `l` between two numbers: that is read as a one (`0 l 0 - 9 9 l 9`)
         "Hello", "Cool", "Will", "Ill", "|", "Il", "I'm", "l'eau"]
NUMBERS = st.one_of(st.integers(0, 999_999).map(str), st.dates().map(lambda d: d.strftime("%Y-%m")),
                    st.just("1577-7011"), st.just("1,234,567원"))


@given(st.lists(st.one_of(st.sampled_from(WORDS), NUMBERS), min_size=1, max_size=8))
@example(["1577-7011", "Ill", "0"])  # found by this property in a fresh-clone run
def test_words_that_begin_with_a_digit_syllable_beside_numbers_are_no_phone(parts):
    """Found by the fix review: read syllable by syllable, `이용` (use) or `일요일`
    (Sunday) beside a date or the official phone made a phone number. Ordinary words
    (with the letters that show as a zero or a one: `Cool`, `Ill`, `I`),
    numbers of at most six digits, year-months and the official phone, in any order,
    are never a phone spelt in words."""
    found = hazard(" ".join(parts), OFFICIAL)
    assert found is None or not found.startswith("a phone number spelt in words"), found
