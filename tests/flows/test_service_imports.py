"""The served flows' module loads without the pipeline (flows/service.py `_pipeline`).

The inbox watch's process starts every minute and mostly finds nothing new; before it
can start, it imports the module its flow is in. With the pipeline imported at the top,
that took 4.9 s (Great Expectations 3.2 s of it) and, on CI's loaded two cores, a watch
run started 33 s after its minute.
"""

from __future__ import annotations

import json
import subprocess
import sys

PIPELINE_ONLY = ("flows.remediation", "flows.approval", "great_expectations", "pandas", "altair")


def test_the_served_module_leaves_the_pipeline_imports_to_a_run_that_is_due():
    loaded = subprocess.run(
        [sys.executable, "-c", "import json, sys, flows.service; print(json.dumps(sorted(sys.modules)))"],
        capture_output=True, text=True, check=True)
    modules = set(json.loads(loaded.stdout))
    assert "flows.service" in modules
    assert modules.isdisjoint(PIPELINE_ONLY), sorted(modules & set(PIPELINE_ONLY))


def test_a_run_that_is_due_gets_the_pipeline_flow_and_the_approval_step():
    from flows.service import _pipeline

    remediation, await_approval = _pipeline()
    assert remediation.name == "redress-remediation"
    assert callable(await_approval)


def test_a_hand_started_run_takes_its_run_date_as_the_command_line_does():
    """Found by review: Prefect's validation (pydantic) read `1764547200` as 2025-12-01."""
    from datetime import date

    import pytest
    from prefect.exceptions import ParameterTypeError

    from flows.service import redress_run

    common = {"data_dir": "d", "policy_path": "p.toml"}
    for given, taken in (("2025-12-01", date(2025, 12, 1)), (date(2025, 12, 1), date(2025, 12, 1)), (None, None)):
        assert redress_run.validate_parameters({**common, "run_date": given})["run_date"] == taken
    for wrong in (1764547200, 1764547200.0, "1764547200", "20251201", "2025-W49-1", "", "2025-12-01T00:00:00"):
        with pytest.raises(ParameterTypeError, match="run_date must be YYYY-MM-DD"):
            redress_run.validate_parameters({**common, "run_date": wrong})
