"""Send a job's output to its log file and turn user errors into one line and exit 1."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path

from dltemplate.errors import UserError


def debug_enabled() -> bool:
    return os.environ.get("DLT_DEBUG", "") not in ("", "0")


def _unshare(log_file: Path) -> None:
    """Start a new file when the log is also an earlier attempt's log under a second name (a
    hard link kept by the fit job), so that this job's output never lands in that one."""
    try:
        if log_file.stat().st_nlink > 1:
            log_file.unlink()
    except FileNotFoundError:
        pass


def file_problem(exc: OSError) -> str:
    """One line for a file the job could not write or read: which, why, and what to do."""
    advice = {
        errno.ENOSPC: "free disk space",
        errno.EDQUOT: "free space in your quota",
        errno.EFBIG: "the file size limit (ulimit -f) is too low",
        errno.EROFS: "the file system is read-only",
        errno.EACCES: "fix the permissions",
        errno.EPERM: "fix the permissions (or the immutable flag)",
    }.get(exc.errno, "check the path")
    return (
        f"Cannot write or read {exc.filename}: {exc.strerror}; {advice}, then rerun the same "
        "target (earlier checkpoints and results are kept)"
    )


@contextlib.contextmanager
def job_log(log_file: str | Path | None) -> Iterator[None]:
    """Redirect stdout/stderr (file descriptors too) to `log_file`, appending.

    A UserError, or an OSError about a file (disk full, read-only, no permission), ends the job
    with a one-line message, in the log and on the console, and exit status 1; any other
    exception keeps its traceback in the log. DLT_DEBUG=1 prints the traceback too.
    """
    console = os.fdopen(os.dup(2), "w", buffering=1)
    log = None
    if log_file:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        _unshare(Path(log_file))
        log = open(log_file, "a", buffering=1)  # noqa: SIM115 - closed below
        sys.stdout.flush()
        sys.stderr.flush()
        saved = os.dup(1), os.dup(2)
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", force=True)
    try:
        yield
    except (UserError, OSError) as exc:
        if isinstance(exc, OSError) and not exc.filename:
            raise  # not about a file the user can fix: keep the traceback
        message = f"Error: {exc if isinstance(exc, UserError) else file_problem(exc)}"
        if debug_enabled():
            traceback.print_exc()
        print(message, file=sys.stderr, flush=True)
        if log is not None:
            print(message, file=console, flush=True)
        raise SystemExit(1) from None
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        if log is not None:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            log.close()
        console.close()
