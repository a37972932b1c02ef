"""redress/rules/message_safety.py: what a notification may not hold (SPEC "Notifications"):
a link, an email address, or a phone number but the official one."""

from __future__ import annotations

import pytest

from redress.rules.message_safety import hazard

OFFICIAL = "1577-7011"


@pytest.mark.parametrize("text", [
    "Coupang", "쿠팡", "Coupang Inc.", "Coupang (쿠팡)", "Coupang Corp. Korea", "Coupang 2025", "e.g. this",
    "shopping", "food_delivery", "travel-2025", "v1.2", "order_history_2025_06_24", "entrance_code",
    "보상금 1,234,567원이 입금됩니다.", "문의: 고객센터 1577-7011 (참조번호 ABCDEFGH)",
    "1577-7011", "15777011", "1577 7011", "Coupang 1588",
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
    ("０１０-９９９９-９９９９", "a phone number '010-9999-9999'"),
    ("1577-7011-1", "a phone number '1577-7011-1'"),   # the official digits and more
    # found by review: separators a reader still reads as one number
    ("Coupang 010 - 9999 - 9999", "a phone number '010 - 9999 - 9999'"),
    ("Coupang, call 010  -  9999  -  9999", "a phone number '010  -  9999  -  9999'"),
    ("010/9999/9999", "a phone number '010/9999/9999'"),
    ("010·9999·9999", "a phone number '010·9999·9999'"),
    ("010~9999~9999", "a phone number '010~9999~9999'"),
    ("evil\u200b.com", "an unprintable character U+200B"),  # shown as evil.com
    ("Coupang\u202e", "an unprintable character U+202E"),
    ("Coupang\nbit", "an unprintable character U+000A"),
])
def test_links_emails_other_phones_and_hiding_characters_are_named(text, kind):
    found = hazard(text, OFFICIAL)
    assert found is not None and found.startswith(kind), found
    assert "\n" not in found


def test_without_an_official_phone_every_phone_is_named():
    assert hazard("1577-7011") == "a phone number '1577-7011'"
