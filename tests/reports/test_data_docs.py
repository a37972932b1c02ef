"""The suite records (redress/reports/data_docs.py): records read in the run's order, one
overview row per suite run, and the three states a suite run can be in (passed, defects
found and handled, a gate that stopped the run), each reason with its plain words."""

from __future__ import annotations

import json
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from redress import vocabulary as v
from redress.reports.data_docs import RECORD_MAX_BYTES, readable_records, reason_lines, suite_overview, suite_state, validation_records


def test_records_are_read_in_the_order_they_were_written(tmp_path, records):
    folder = tmp_path / "validations"
    folder.mkdir(parents=True)
    for i, (name, rec) in enumerate(zip(["zzz", "aaa"], records)):
        path = folder / f"{name}.json"
        path.write_text(json.dumps(rec))
        stamp = 1_700_000_000_000_000_000 + i
        os.utime(path, ns=(stamp, stamp))
    assert [r["label"] for r in validation_records(tmp_path)] == [r["label"] for r in records]
    assert validation_records(tmp_path / "missing") == []


SPOILT = {  # what a person may leave in validations/ since the run: each is left out and counted
    "cut short": lambda p: p.write_text('{"label": '),
    "not UTF-8": lambda p: p.write_bytes(b'{"label": "\xff"}'),
    "empty": lambda p: p.write_text(""),
    "a list": lambda p: p.write_text("[1, 2]"),
    "an empty object": lambda p: p.write_text("{}"),
    "a label alone": lambda p: p.write_text('{"label": "ledger"}'),
    "a label that is not text": lambda p: p.write_text('{"label": ["x"], "success": true, "results": []}'),
    "results that are not objects": lambda p: p.write_text('{"label": "x", "success": true, "results": [1]}'),
    "nested too deep": lambda p: p.write_text("[" * 100_000),
    "a folder": lambda p: p.mkdir(),
    "a broken link": lambda p: p.symlink_to(p.parent / "nowhere"),
    "a named pipe": lambda p: os.mkfifo(p),  # never opened: reading one would wait for a writer
    "a link to a device": lambda p: p.symlink_to("/dev/zero"),  # never read: it never ends
    "far over a record's size": lambda p: os.truncate(p.write_text("{") and p, RECORD_MAX_BYTES + 1),
    "a count edited to text": lambda p: p.write_text(json.dumps({"label": "x", "success": False, "results": [
        {"success": False, "reason": "r", "unexpected_count": "n/a"}]})),
    "held reasons edited to a number": lambda p: p.write_text(json.dumps({"label": "x", "success": False,
        "held_reasons": 5, "results": [{"success": False, "reason": "r", "unexpected_count": 1}]})),
}


@pytest.mark.parametrize("spoilt", sorted(SPOILT))
def test_readable_records_leave_out_and_count_what_is_not_a_suite_record_and_never_raise(tmp_path, records, spoilt):
    folder = tmp_path / "validations"
    folder.mkdir()
    for i, (name, rec) in enumerate(zip(["zzz", "aaa"], records)):
        (folder / f"{name}.json").write_text(json.dumps(rec))
        os.utime(folder / f"{name}.json", ns=(1_700_000_000_000_000_000 + i,) * 2)
    SPOILT[spoilt](folder / "mmm.json")
    found, left_out = readable_records(tmp_path)
    assert [r["label"] for r in found] == [r["label"] for r in records] and left_out == 1


def test_readable_records_keep_the_last_written_record_of_a_label_and_count_the_other(tmp_path, records):
    folder = tmp_path / "validations"
    folder.mkdir()
    for i, (name, rec) in enumerate([("zzz", records[0]), ("aaa", records[1]),
                                     ("copy", dict(records[0], success=not records[0]["success"]))]):
        (folder / f"{name}.json").write_text(json.dumps(rec))
        os.utime(folder / f"{name}.json", ns=(1_700_000_000_000_000_000 + i,) * 2)
    found, left_out = readable_records(tmp_path)
    assert [(r["label"], r["success"]) for r in found] == [(records[1]["label"], records[1]["success"]),
                                                            (records[0]["label"], not records[0]["success"])]
    assert left_out == 1


def test_readable_records_of_a_record_without_a_label_take_its_suite_and_of_no_folder_are_none(tmp_path, records):
    folder = tmp_path / "validations"
    folder.mkdir()
    old = {k: v for k, v in records[0].items() if k != "label"}  # as an earlier version wrote it
    (folder / "old.json").write_text(json.dumps(old))
    assert readable_records(tmp_path) == ([dict(old, label=old["suite"])], 0)
    assert readable_records(tmp_path / "missing") == ([], 0)
    (tmp_path / "file").mkdir()
    (tmp_path / "file" / "validations").write_text("a file in the folder's place")
    assert readable_records(tmp_path / "file") == ([], 0)


def test_suite_overview(records):
    assert suite_overview(records)[1] == {
        "suite_run": "scope_exposures", "suite": "scope_exposures", "table": "scope_exposures", "passed": False,
        "state": v.STOPPED, "state_text": v.SUITE_STATES[v.STOPPED], "failed_rows": 37,
        "expectations": 2, "failed_expectations": 1, "failed_reasons": "gate_failed_unknown_matched_by",
    }


def _failing(reason: str, error: str | None = None) -> dict:
    return {"expectation": "e", "column": "c", "reason": reason, "success": False, "unexpected_count": 3,
            "element_count": 10, "error": error}


@pytest.mark.parametrize("held, reasons, error, state", [
    (None, ["missing_name"], None, v.HANDLED),                           # a staging suite: file quarantined
    (["missing_identifier", "checks_disagree"], ["missing_identifier", "checks_disagree"], None, v.HANDLED),
    (["missing_identifier"], ["missing_identifier", "duplicate_row"], None, v.STOPPED),  # one failure nothing holds
    ([], ["gate_failed_duplicate_row"], None, v.STOPPED),                 # a gate
    (None, ["missing_name"], "GX could not run it", v.STOPPED),           # an error is never "handled"
    ("absent", ["missing_name"], None, v.STOPPED),                        # a record that does not say: a gate
])
def test_a_failed_suite_run_is_handled_only_when_every_failure_is_held(held, reasons, error, state):
    record = {"success": False, "results": [_failing(r, error) for r in reasons]}
    if held != "absent":
        record["held_reasons"] = held
    assert suite_state(record) == state


@given(held=st.none() | st.lists(st.sampled_from(sorted(v.SCOPE_ROW_REASONS)), unique=True),
       failed=st.lists(st.sampled_from([*v.SCOPE_ROW_REASONS, *v.GATE_REASONS]), min_size=1, unique=True))
def test_state_is_handled_exactly_when_the_held_reasons_cover_the_failures(held, failed):
    record = {"success": False, "held_reasons": held, "results": [_failing(r) for r in failed]}
    covered = held is None or set(failed) <= set(held)
    assert suite_state(record) == (v.HANDLED if covered else v.STOPPED)
    assert suite_state(dict(record, success=True)) == v.PASSED


def test_every_failed_reason_gets_its_plain_words_once(records):
    lines = reason_lines(records + records)
    assert lines == [{"reason": "gate_failed_unknown_matched_by",
                      "text": v.GATE_REASONS["gate_failed_unknown_matched_by"]}]


def test_a_reason_two_kinds_share_reads_as_its_suites_kind():
    """Found by the fix review: the data-quality page read "accessed_at is not a
    timestamp" for a customers snapshot's created_at, after summary.md had been fixed."""
    records = [{"label": "customers_staging-customers_2.csv", "success": False,
                "results": [_failing(v.INVALID_TIMESTAMP)]},
               {"label": "scope_rows", "success": False, "results": [_failing(v.INVALID_TIMESTAMP)]}]
    assert reason_lines(records) == [
        {"reason": v.INVALID_TIMESTAMP, "text": "accessed_at is not a timestamp"},
        {"reason": v.INVALID_TIMESTAMP, "text": "created_at or closed_at is not a timestamp"}]
    assert reason_lines(records[:1]) == [{"reason": v.INVALID_TIMESTAMP,
                                          "text": "created_at or closed_at is not a timestamp"}]
