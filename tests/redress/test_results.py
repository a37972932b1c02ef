"""The typed stage results (redress/results.py): every field of every result reaches
run_counts (what `runs.counts` stores and the flow returns), and no result can hold
anything but plain values (no frame, no object a report could leak)."""

from __future__ import annotations

import dataclasses
import itertools
import types
import typing

import pytest

from redress.results import STAGES, RunSummary, run_counts

_counter = itertools.count(1)


def sample(tp):
    """A value of type `tp`, distinct from every other one drawn; a field of a type that
    is not plain data (a frame, a path...) has no sample and fails the test."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return sample(next(a for a in args if a is not type(None)))
    if origin is tuple:
        return (sample(args[0]), sample(args[0]))
    if origin is dict:
        return {f"key{next(_counter)}": sample(args[1]), f"key{next(_counter)}": sample(args[1])}
    if dataclasses.is_dataclass(tp):
        hints = typing.get_type_hints(tp)
        return tp(**{f.name: sample(hints[f.name]) for f in dataclasses.fields(tp)})
    if tp is bool:
        return True
    if tp is int:
        return next(_counter)
    if tp is str:
        return f"text{next(_counter)}"
    raise TypeError(f"{tp!r} is not plain data: a stage result holds counts, codes and names only")


def expected(value):
    """`value` as JSON, walked field by field (not through dataclasses.asdict)."""
    if dataclasses.is_dataclass(value):
        return {f.name: expected(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple):
        return [expected(v) for v in value]
    if isinstance(value, dict):
        return {k: expected(v) for k, v in value.items()}
    return value


def full_summary() -> RunSummary:
    hints = typing.get_type_hints(RunSummary)
    return RunSummary(run_id="R20251201-001", report="text",
                      **{stage: sample(hints[stage]) for stage in STAGES})


def test_every_stage_of_the_summary_is_recorded():
    # earlier_reports: the killed runs whose report this run wrote (tasks/report.py), and
    # superseded_plans: the waiting plans it superseded as it started; no stages
    assert set(STAGES) == {f.name for f in dataclasses.fields(RunSummary)} - {
        "run_id", "report", "earlier_reports", "superseded_plans"}


def test_every_field_of_every_result_reaches_the_run_counts():
    summary = full_summary()
    counts = run_counts(summary)
    assert counts == {stage: expected(getattr(summary, stage)) for stage in STAGES}
    # and nothing is only nested by accident: each stage's top-level fields are keys
    for stage in STAGES:
        assert set(counts[stage]) == {f.name for f in dataclasses.fields(getattr(summary, stage))}


def test_stages_that_did_not_finish_are_null_and_the_summary_keeps_its_report():
    summary = RunSummary(run_id="R1", ingest=full_summary().ingest)
    counts = run_counts(summary)
    assert counts["ingest"] is not None and [counts[s] for s in STAGES[1:]] == [None] * (len(STAGES) - 1)
    assert summary.as_dict() == {"run_id": "R1", **counts, "report": None}


@pytest.mark.parametrize("stage", STAGES)
def test_stage_results_are_frozen(stage):
    result = getattr(full_summary(), stage)
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(result, dataclasses.fields(result)[0].name, None)


def test_files_read_are_the_inbox_files_then_the_returns_then_the_claims_files():
    summary = full_summary()
    assert summary.files_read() == [*summary.ingest.files, *summary.returns.files, *summary.claims.files]
