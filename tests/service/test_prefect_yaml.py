"""prefect.yaml, for teams with a work pool and workers, deploys the same three
deployments as `redress serve`, with the same schedules. The deployments are removed
again afterwards (with their scheduled runs): `redress serve` registers deployments of
the same names on this server, and must not inherit runs meant for a worker."""

from __future__ import annotations

import subprocess

import pytest
from prefect import get_client

from flows.service import DEPLOYMENTS, WATCH_CRON
from service_processes import PREFECT, ROOT

pytestmark = pytest.mark.e2e

FLOWS = {"remediation": ("redress-run", "flows/service.py:redress_run"),
         "inbox-watch": ("redress-inbox-watch", "flows/service.py:inbox_watch"),
         "daily-disbursement": ("redress-daily-disbursement", "flows/service.py:daily_disbursement")}


def prefect(server, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([PREFECT, *args], cwd=ROOT, env=server.env(), capture_output=True, text=True,
                          timeout=180)


def test_prefect_yaml_deploys_the_served_deployments_to_a_work_pool(prefect_server):
    pool = prefect(prefect_server, "work-pool", "create", "redress", "--type", "process")
    assert pool.returncode == 0, pool.stdout + pool.stderr
    deployed = prefect(prefect_server, "--no-prompt", "deploy", "--all")
    try:
        assert deployed.returncode == 0, deployed.stdout + deployed.stderr
        with get_client(sync_client=True) as client:
            found = {name: client.read_deployment_by_name(f"{flow}/{name}") for name, (flow, _) in FLOWS.items()}
        assert set(found) == set(DEPLOYMENTS)
        for name, deployment in found.items():
            assert deployment.entrypoint == FLOWS[name][1]
            assert deployment.work_pool_name == "redress"
            (step,) = deployment.pull_steps
            assert set(step) == {"prefect.deployments.steps.set_working_directory"}
            assert deployment.parameters == {"data_dir": "data", "policy_path": "policies/coupang-2025-v1.toml"}
        assert found["remediation"].schedules == []
        (watch,) = found["inbox-watch"].schedules
        assert watch.schedule.cron == WATCH_CRON
        (daily,) = found["daily-disbursement"].schedules
        assert (daily.schedule.cron, daily.schedule.timezone) == ("0 9 * * *", "Asia/Seoul")
    finally:
        with get_client(sync_client=True) as client:
            for name, (flow, _) in FLOWS.items():
                try:
                    client.delete_deployment(client.read_deployment_by_name(f"{flow}/{name}").id)
                except Exception:
                    pass  # not created

