"""When a task may retry: only when the outside world was flaky (STYLE 4).

Only tasks that read or write files use this (ingest, the inbox check). Disburse,
notify and returns never retry: they create payments or change their statuses, and a
failed one is rerun by a person, with the run report in hand.
"""

from __future__ import annotations

import errno

# Seconds before retries 1, 2 and 3; each is stretched by up to half again at random so
# that runs failing together do not retry together.
BACKOFF_SECONDS = [10, 60, 300]
JITTER = 0.5


# What a retry minutes later meets again: a permission, a read-only file system, a file
# where a folder should be. Found by review: a folder redress may not read was retried
# for 8 minutes, the console saying only "still running".
LASTING = frozenset({errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR, errno.EISDIR, errno.ELOOP,
                     errno.ENAMETOOLONG, errno.EEXIST})


def io_errors_only(task, task_run, state) -> bool:
    """Retry an OSError (a file share that drops, a disk briefly full); never one that
    lasts (LASTING), an expected error (RedressError: a bad file, no customers snapshot),
    a bug, or a timeout (a task that ran out of time would only run out of it again)."""
    exc = state.data if isinstance(state.data, BaseException) else None
    return isinstance(exc, OSError) and not isinstance(exc, TimeoutError) and exc.errno not in LASTING
