"""Send a job's output to its log file, keep it readable, and end every failed job with the
error in one line: the last line of the log and of what Snakemake shows."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import sys
import traceback
import warnings
from collections.abc import Iterator
from pathlib import Path

from dltemplate.errors import UserError, one_line

# Third-party warnings that a user cannot act on (warnings about the user's code stay).
UNACTIONABLE_WARNINGS = (
    r".*isinstance\(treespec, LeafSpec\)` is deprecated",  # torch's pytree, via Lightning
    r"The `srun` command is available on your system but is not used",  # jobs inside SLURM
    # The task wrapper's epoch means are reduced over the ranks already (EpochMean).
    r"It is recommended to use `self.log\('(train|val|test)/",
)
TIP_PREFIX = "💡 Tip"  # Lightning's advertisements
# Lightning's notes on what the job asked for on purpose (the callbacks getter's ModelSummary).
UNACTIONABLE_NOTES = ("Trainer already configured with model summary callbacks",)


class _NotTwice(logging.Filter):
    """For the root handler: skip records that a logger's own handler prints already
    (Lightning's loggers print `INFO: ...` themselves and also propagate)."""

    def filter(self, record: logging.LogRecord) -> bool:
        logger = logging.getLogger(record.name)
        while logger.parent is not None:
            if logger.handlers:
                return False
            if not logger.propagate:
                break
            logger = logger.parent
        return True


class _NoTips(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = str(record.msg)
        return not message.startswith((TIP_PREFIX, *UNACTIONABLE_NOTES))


def quiet_third_parties() -> None:
    """Filter the warnings and tips above, for the rest of the job's process."""
    for pattern in UNACTIONABLE_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern)
    logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(_NoTips())


def configure_logging() -> None:
    """The job's logging: INFO and up to stderr, through the root logger. Before Lightning is
    imported, so that Lightning's loggers pass their records up to it (with no root handler at
    its import, Lightning gives its logger a handler of its own and keeps the records there);
    the warm server calls it before its imports for the same reason."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", force=True)
    for handler in logging.getLogger().handlers:
        handler.addFilter(_NotTwice())
    quiet_third_parties()


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

    Every exception ends the job with exit status 1 and one line, `Error: ...`, as the last line
    of the log and on the console: a UserError's message, or for an OSError about a file (disk
    full, read-only, no permission) what to do; any other exception also leaves its traceback
    in the log, above that line. DLT_DEBUG=1 prints the traceback of user errors too. SIGTERM,
    Ctrl-C and other exits pass through unchanged.
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
    configure_logging()
    try:
        yield
    except Exception as exc:
        if isinstance(exc, UserError):
            message = f"Error: {exc}"
        elif isinstance(exc, OSError) and exc.filename:
            message = f"Error: {file_problem(exc)}"
        else:  # a bug or a failure in the user's code: the traceback goes to the log first
            traceback.print_exc()
            message = f"Error: {one_line(exc)} (the traceback is in the log above)"
        if debug_enabled() and isinstance(exc, UserError | OSError):
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
