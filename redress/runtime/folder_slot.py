"""One pipeline run per data folder at a time, the second one waiting its turn.

Served runs (flows/service.py) take the folder's slot of a Prefect global concurrency
limit of one slot, named after the folder, before the pipeline starts. A run started
meanwhile, by hand, by the daily schedule or by the inbox watch, waits until the first
one ends instead of being refused or running beside it. The limit lives on the Prefect
server, so it holds across every process serving or working on the folder; the slot is
a lease the holder renews, so a killed run frees the folder within `LEASE_SECONDS`.

`redress run` does not use the server: it takes the folder lock (redress/warehouse/runs.py) and is
refused while another run holds it, as before. A served run that finds that lock held
waits for it too, polling, since taking it here would make the pipeline's own attempt
to take it fail.
"""

from __future__ import annotations

import fcntl
import hashlib
import math
import os
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Iterator

import httpx

from redress.errors import RedressError
from redress.warehouse import LOCK_FILE

LEASE_SECONDS = 300  # renewed every 3/4 of it while the run goes on
LOCK_POLL_SECONDS = 5


def slot_name(data_dir: Path) -> str:
    """The folder's limit: the same folder always gives the same name."""
    digest = hashlib.sha256(str(Path(data_dir).resolve()).encode()).hexdigest()[:12]
    return f"redress-folder-{digest}"


def ensure_slot(data_dir: Path) -> str:
    """Create the folder's limit with one slot, or put it back to one slot and active
    if someone changed it: two slots would let two runs pay at once."""
    from prefect import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate, GlobalConcurrencyLimitUpdate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    name = slot_name(data_dir)
    with get_client(sync_client=True) as client:
        try:
            limit = client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            try:
                client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=1))
            except ObjectAlreadyExists:
                pass  # another run created it meanwhile
        else:
            if limit.limit != 1 or not limit.active:
                client.update_global_concurrency_limit(name, GlobalConcurrencyLimitUpdate(limit=1, active=True))
    return name


def _busy(exc: BaseException) -> bool:
    """A refusal because the slot is taken (HTTP 423), not a failure to reach the server."""
    cause = exc.__cause__
    return isinstance(cause, httpx.HTTPStatusError) and cause.response.status_code == 423


def direct_run_active(data_dir: Path) -> bool:
    """Whether a `redress run` holds the folder lock right now."""
    lock_path = Path(data_dir) / LOCK_FILE
    if not lock_path.exists():
        return False
    fd = os.open(lock_path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing releases the probe's lock
    return False


def _duration(seconds: float) -> str:
    """`6 h`, `5 h 58 min`, `45 s`: a wait as a person says it, whole seconds rounded up."""
    hours, rest = divmod(math.ceil(seconds), 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [f"{n} {unit}" for n, unit in ((hours, "h"), (minutes, "min"), (seconds, "s")) if n]
    return " ".join(parts) or "0 s"


def _log(message: str) -> None:
    from prefect.exceptions import MissingContextError
    from prefect.logging import get_run_logger

    try:
        get_run_logger().info(message)
    except MissingContextError:
        pass


def _holder():
    """The flow run holding the slot, shown by the Prefect UI beside the limit."""
    from prefect.client.schemas.objects import ConcurrencyLeaseHolder
    from prefect.context import FlowRunContext

    ctx = FlowRunContext.get()
    if ctx is None or ctx.flow_run is None:
        return None
    return ConcurrencyLeaseHolder(type="flow_run", id=ctx.flow_run.id)


def _direct_run_ended(data_dir: Path, wait_seconds: float, started: float) -> bool:
    """Wait for a `redress run` holding the folder lock to end; False at once when told not to wait."""
    said = False
    while direct_run_active(data_dir):
        if wait_seconds == 0:
            return False
        if not said:  # found by the fix review: this wait, too, said nothing until it ended
            # what is left of the one wait, part of which may have gone on the slot
            _log(f"a `redress run` or `redress approve` is using the folder: this run waits for it to end (at most "
                 f"{_duration(max(wait_seconds - (time.monotonic() - started), 0))})")
            said = True
        if time.monotonic() - started >= wait_seconds:
            raise RedressError(f"waited {wait_seconds:.0f} s for the `redress run` using {data_dir} to end")
        time.sleep(LOCK_POLL_SECONDS)
    return True


@contextmanager
def folder_slot(data_dir: Path, *, wait_seconds: float) -> Iterator[bool]:
    """Hold the folder for one pipeline run.

    wait_seconds > 0: wait up to that long for the run using the folder to end (a
    RedressError after it), then yield True. wait_seconds == 0: yield False at once if
    the folder is in use, True if it is now held.
    """
    from prefect.concurrency.asyncio import AcquireConcurrencySlotTimeoutError, ConcurrencySlotAcquisitionError
    from prefect.concurrency.sync import concurrency

    name = ensure_slot(data_dir)
    started = time.monotonic()

    def take(held: ExitStack, wait: float) -> None:
        held.enter_context(concurrency(
            name, occupy=1, strict=True, lease_duration=LEASE_SECONDS, holder=_holder(),
            timeout_seconds=wait or None, max_retries=0 if wait == 0 else None,
            # a server hiccup while the run goes on must not stop it half way: the
            # pipeline is safe to run again, but a run cut short is a failed run
            raise_on_lease_renewal_failure=False,
        ))

    with ExitStack() as held:
        busy = False
        try:  # at once, if the folder is free
            take(held, 0)
            acquired = True
        except Exception as exc:  # noqa: BLE001 (any other failure: the waiting attempt, which retries, meets it again)
            busy = isinstance(exc, ConcurrencySlotAcquisitionError) and _busy(exc)
            if not busy and wait_seconds == 0:
                raise
            acquired = False  # busy, or a server hiccup the waiting attempt retries
        if not acquired and wait_seconds > 0:
            if busy:  # found by review: a run waiting its turn said nothing for minutes
                _log(f"another run is using the folder: this one waits for it to end (at most "
                     f"{_duration(wait_seconds)}; a killed run frees it within {LEASE_SECONDS // 60} minutes)")
            try:
                take(held, wait_seconds)
                acquired = True
            except AcquireConcurrencySlotTimeoutError:
                raise RedressError(f"waited {wait_seconds:.0f} s for the run using {data_dir} to end; "
                                   "it is still going on") from None
        free = acquired and _direct_run_ended(data_dir, wait_seconds, started)
        if free and time.monotonic() - started > 1:
            _log(f"waited {time.monotonic() - started:.0f} s for the run before this one to end")
        yield free
