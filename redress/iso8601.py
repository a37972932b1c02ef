"""ISO 8601 as redress reads a time: one pattern for the inbox's readers
(redress/inbox/streaming.py, which also rewrites the standard's other spellings to it)
and the policy's instants (redress/policy/tables.py). A constant, so that the pure rules,
which read the policy, import nothing of the readers."""

from __future__ import annotations

import re

# ISO 8601 as the SPEC allows it: a date, optional time, optional offset (right after
# the time: DuckDB casts no space before it; OTHER_SPELLINGS takes one out). DuckDB alone
# would also take forms like 2025/07/01, which forensics files must not rely on, and any
# two digits as an offset's hours or minutes (`+99`, `+09:99`, moving the time by days):
# an offset is at most 14 hours (the widest any zone uses) and its minutes below 60.
ISO_8601 = (r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?)?"
            r"(Z|[+-]((0\d|1[0-3])(:?[0-5]\d)?|14(:?00)?))?$")

# ISO 8601's other spellings of the same times, which DuckDB does not cast as written,
# rewritten to the extended form above: the basic format (`20250701T120000+0900`,
# `20250701T1200Z`; not mixed with the extended one, `20250701T1200:30`), a comma as the
# decimal sign (the standard's preferred one, which log4j's ISO8601 layout writes:
# `2025-07-01T12:00:00,123+09:00`), and one space before the zone, which DuckDB does not
# cast (`2025-07-01 12:00:00 +0900`, as Ruby and git write it; ISO_8601 admitted it, and
# the cast gave nothing).
# So is a lower-case `t` or `z` (`2025-07-01t12:00:00z`), which RFC 3339, ISO 8601's
# profile for the internet, allows and some loggers write.
# Found by review: all were invalid_timestamp, and the people they named went unpaid.
# Only a text that is not in the extended form is rewritten, so the usual rows pay
# nothing for it. Each is (pattern, replacement) for DuckDB's regexp_replace (RE2) and
# Python's re.sub alike, in this order (`extended`).
OTHER_SPELLINGS = (
    (r"^(\d{4}-\d{2}-\d{2}|\d{8})t", r"\1T"),
    (r"([\d\s])z$", r"\1Z"),
    (r"^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})", r"\1-\2-\3T\4:\5:\6"),
    (r"^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})([^\d:]|$)", r"\1-\2-\3T\4:\5\6"),
    (r"^(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}),(\d)", r"\1.\2"),
    (r"^(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)\s(Z|[+-]\d)", r"\1\2"),
)


def extended(text: str) -> str:
    """`text` with OTHER_SPELLINGS rewritten, in Python, as the inbox's SQL rewrites it."""
    for pattern, replacement in OTHER_SPELLINGS:
        text = re.sub(pattern, replacement, text)
    return text
