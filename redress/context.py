"""What one run is about and where its files live. Passed to every task: small, plain
and free of secrets (the HMAC key is in the settings, handed to the tasks beside it)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

from redress.errors import RedressError, RunPolicyUnreadable
from redress.policy import Policy, load_policy, policy_from_text
from redress.warehouse import path as warehouse_path


@dataclass(frozen=True)
class RunContext:
    data_dir: Path
    run_id: str
    run_date: date
    policy_path: Path
    policy_sha256: str
    # The policy file's text as the run read it (runs.policy_text), for a page that only
    # describes an earlier run (redress/warehouse/runs.py run_context); None: the file alone.
    recorded_policy: str | None = None

    @property
    def warehouse(self) -> Path:
        return warehouse_path(self.data_dir)

    @property
    def work_dir(self) -> Path:
        """Scratch Parquet files of this run; removed when it succeeds."""
        return self.data_dir / "work" / self.run_id

    @property
    def batches_dir(self) -> Path:
        return self.data_dir / "outbox" / "batches"

    @property
    def notifications_dir(self) -> Path:
        return self.data_dir / "outbox" / "notifications"

    @property
    def report_dir(self) -> Path:
        return self.data_dir / "reports" / self.run_id

    @property
    def quarantine_dir(self) -> Path:
        return self.data_dir / "quarantine" / self.run_id

    @property
    def overpayments_file(self) -> Path:
        """The disburse stage's overpayment exceptions, one row per customer
        (redress/rules/payments.py `overpayments`), for the report stage to list."""
        return self.work_dir / "overpayments.parquet"

    def policy(self) -> Policy:
        """The run's policy, refusing a file that changed since the run started
        (RedressError, one line), unless the context holds the text the run read
        (`recorded_policy`): then that text, as the run read it."""
        try:
            policy = load_policy(self.policy_path)
        except RedressError as exc:
            if self.recorded_policy is None:
                raise RunPolicyUnreadable(f"{exc} (run {self.run_id} read its policy there: put the file back as "
                                          "the run read it)") from None
            policy = None
        if policy is None or policy.sha256 != self.policy_sha256:
            if self.recorded_policy is not None:
                recorded = policy_from_text(self.recorded_policy, self.policy_path)
                if recorded.sha256 == self.policy_sha256:
                    return recorded
            raise RunPolicyUnreadable(f"policy {self.policy_path.name} changed since run {self.run_id} started "
                                      "(its SHA-256 is not the one the run recorded: put the file back as the run "
                                      "read it)")
        return policy
