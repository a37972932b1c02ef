"""ISO 8601 as redress reads a time: one pattern for the inbox's readers
(redress/inbox/streaming.py, which also rewrites the standard's other spellings to it)
and the policy's instants (redress/policy/tables.py). A constant, so that the pure rules,
which read the policy, import nothing of the readers."""

# ISO 8601 as the SPEC allows it: a date, optional time, optional offset (right after
# the time: DuckDB casts no space before it; OTHER_SPELLINGS takes one out). DuckDB alone
# would also take forms like 2025/07/01, which forensics files must not rely on, and any
# two digits as an offset's hours or minutes (`+99`, `+09:99`, moving the time by days):
# an offset is at most 14 hours (the widest any zone uses) and its minutes below 60.
ISO_8601 = (r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?)?"
            r"(Z|[+-]((0\d|1[0-3])(:?[0-5]\d)?|14(:?00)?))?$")
