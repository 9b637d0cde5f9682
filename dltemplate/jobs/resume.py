"""A run folder's fit history: one writer at a time, resume or start fresh, and the attempts.

Imports no torch, so the command line can use it (`request_restart`). What it manages, in the
run's layout (dltemplate.layout.RunLayout): the lock `fit.lock` (fcntl; its text says who holds
it), the `RESTART` request, `checkpoints/` with `fit_state.json` (the fingerprint of the fit
that made them, whether it finished, and then its fit.done record), `checkpoints.old-<n>/` (an
earlier fit moved aside), every attempt's log `logs/fit.attempt-<n>.log` (Snakemake deletes
logs/fit.log on a rerun), and every attempt's CSV log `metrics/fit/attempt-<n>/`, merged into
`metrics/fit/metrics.csv`, with `metrics/fit/attempts.json` saying where each attempt started.
"""

from __future__ import annotations

import contextlib
import csv
import datetime
import errno
import fcntl
import io
import json
import os
import re
import shutil
import socket
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dltemplate.config.trainer_args import JOB_SETTINGS
from dltemplate.errors import UserError
from dltemplate.layout import RunLayout
from dltemplate.records import now, write_json_atomic, write_text_atomic
from dltemplate.workflow.job_spec import FIRST_FINGERPRINT
from dltemplate.workflow.sources import changed_sources

_ATTEMPT = re.compile(r"attempt-(\d+)")
_REFUSED = re.compile(r"refused-(\d+)")
_OLD = re.compile(r".*\.old-(\d+)")


class RunLockedError(UserError):
    """Another process is fitting this run."""


def _layout(run_dir: str | Path) -> RunLayout:
    return RunLayout.at(run_dir)


def _holder() -> str:
    slurm = os.environ.get("SLURM_JOB_ID")
    where = f"pid {os.getpid()} on host {socket.gethostname()}"
    if slurm:
        where += f", SLURM job {slurm}"
    return f"{where}, since {now()}"


@contextlib.contextmanager
def run_lock(run_dir: str | Path) -> Iterator[Path]:
    """Hold `<run_dir>/fit.lock` while fitting, or raise RunLockedError saying who holds it.

    A POSIX record lock (fcntl), which works across the nodes of a cluster on NFS, and which the
    kernel releases when the holder dies, even by SIGKILL: no stale lock is ever left behind.
    The file stays (deleting a lock file races with the next taker); its text names the holder.
    """
    path = Path(_layout(run_dir).lock)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno not in (errno.EACCES, errno.EAGAIN):
            raise
        holder = path.read_text().strip() or "another process"
        raise RunLockedError(
            f"Run {Path(run_dir)} is being fitted by another process ({holder}, per {path}); "
            "two fits writing one run would corrupt its checkpoints. Let that one finish, or "
            "stop it first (kill the pid, or scancel the SLURM job), then rerun"
        ) from None
    try:
        os.ftruncate(fd, 0)
        os.write(fd, (_holder() + "\n").encode())
        yield path
    finally:
        os.close(fd)  # releases the lock


# -- fingerprints: which config made the checkpoints ---------------------------------------
def fingerprint(
    config: str,
    sources: Mapping[str, str],
    overrides: Mapping[str, Any],
    seed: int,
    version_marks: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """What makes a fit this fit: checkpoints of another fingerprint are not resumed. The
    fit job's own settings (what it keeps besides, like trainer.keep_every_n_epochs) are not
    part of it: changing them resumes, or keeps a finished fit. `version_marks`: the run
    inputs that version results (JobSpec.version_marks), present only when set, so that the
    fingerprints recorded before they existed stay equal."""
    shaping = {k: v for k, v in overrides.items() if k not in _JOB_SETTING_PATHS}
    return {
        "config": str(config),
        "sources": dict(sorted(sources.items())),
        # plain JSON, non-finite numbers as text, so the record compares equal when read back
        "overrides": json.loads(
            json.dumps(shaping, sort_keys=True, default=str), parse_constant=str
        ),
        "seed": seed,
        **dict(version_marks or {}),
    }


def _differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    parts = []
    if old.get("config") != new.get("config"):
        parts.append(f"config {old.get('config')} -> {new.get('config')}")
    files = changed_sources(old.get("sources", {}), new.get("sources", {}))
    if files:
        more = f" and {len(files) - 5} more" if len(files) > 5 else ""
        parts.append(f"changed files: {', '.join(files[:5])}{more}")
    old_o, new_o = old.get("overrides", {}), new.get("overrides", {})
    keys = sorted(k for k in set(old_o) | set(new_o) if old_o.get(k) != new_o.get(k))
    if keys:
        parts.append(f"changed overrides: {', '.join(keys)}")
    if old.get("seed") != new.get("seed"):
        parts.append(f"seed {old.get('seed')} -> {new.get('seed')}")
    if old.get("fingerprint") != new.get("fingerprint"):
        before, after = (f.get("fingerprint", FIRST_FINGERPRINT) for f in (old, new))
        parts.append(f"the engine's FINGERPRINT_VERSION {before} -> {after}")
    if new.get("engine_rerun") and old.get("engine_rerun") != new.get("engine_rerun"):
        parts.append(f"a rerun on an engine change ({new['engine_rerun']})")
    return "; ".join(parts) or "its record differs"


_JOB_SETTING_PATHS = frozenset(f"trainer.{name}" for name in JOB_SETTINGS)
MORE_EPOCHS = "trainer.max_epochs"  # raised alone, a fit continues from its last checkpoint


def more_epochs(state: Mapping[str, Any], current: Mapping[str, Any]) -> str | None:
    """'20 -> 40' when `current` differs from the fit that `state` records only by a larger
    trainer.max_epochs than that fit had (a finished fit: than it trained); else None."""
    old = dict(state.get("fingerprint") or {})
    old_overrides = dict(old.get("overrides") or {})
    new_overrides = dict(current.get("overrides") or {})
    before, after = old_overrides.pop(MORE_EPOCHS, None), new_overrides.pop(MORE_EPOCHS, None)
    same_otherwise = {**old, "overrides": old_overrides} == {**current, "overrides": new_overrides}
    if not same_otherwise or type(after) is not int:
        return None
    result = finished_result_record(state)
    trained = result.get("epochs") if state.get("finished") and result else None
    if type(before) is int and after > before and (trained is None or after > trained):
        return f"{before} -> {after}"
    if before is None and type(trained) is int and after > trained:
        return f"{trained} trained -> {after}"
    return None


def finished_result_record(state: Mapping[str, Any]) -> dict[str, Any] | None:
    result = state.get("result")
    return result if isinstance(result, dict) else None


def _continue(
    run_dir: str | Path, state: Mapping[str, Any], current: Mapping[str, Any], more: str
) -> FitPlan:
    continued = (*state.get("continued", ()), more)
    new_state = {**state, "fingerprint": dict(current), "finished": False, "continued": continued}
    write_state(run_dir, new_state)
    last = Path(_layout(run_dir).last_checkpoint)
    attempt = max(attempt_numbers(run_dir), default=0) + 1
    message = f"Continuing from {last} with more epochs: max_epochs {more}"
    return FitPlan(last, attempt, None, message, continued=continued)


def read_state(run_dir: str | Path) -> dict[str, Any] | None:
    try:
        state = json.loads(Path(_layout(run_dir).fit_state).read_text())
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def write_state(run_dir: str | Path, state: Mapping[str, Any]) -> None:
    write_json_atomic(_layout(run_dir).fit_state, dict(state))


def mark_finished(run_dir: str | Path, result: Mapping[str, Any] | None = None) -> None:
    """Record that the fit in `run_dir` ran to its end, with `result` (its fit.done record): a
    later fit job of the same run writes that record again instead of training (see plan_fit)."""
    state = read_state(run_dir) or {}
    state.update(finished=True, finished_at=now())
    if result is not None:
        state["result"] = dict(result)
    write_state(run_dir, state)


def finished_result(run_dir: str | Path, state: Mapping[str, Any]) -> dict[str, Any] | None:
    """The fit.done record of the finished fit that `state` describes, while its best
    checkpoint is still there; None otherwise (a fit finished before records were kept)."""
    result = finished_result_record(state)
    if result is None:
        return None
    best = result.get("best_checkpoint")
    return result if not best or Path(best).is_file() else None


# -- attempts --------------------------------------------------------------------------------
def attempt_numbers(run_dir: str | Path) -> list[int]:
    layout = _layout(run_dir)
    names = [p.name for p in Path(layout.metrics("fit")).glob("attempt-*")]
    names += [p.name for p in Path(layout.logs).glob(Path(layout.attempt_log("*")).name)]
    return sorted({int(m.group(1)) for n in names if (m := _ATTEMPT.search(n))})


def attempt_dir(run_dir: str | Path, attempt: int) -> Path:
    return Path(_layout(run_dir).attempt_metrics(attempt))


def keep_attempt_log(log_file: str | Path | None, run_dir: str | Path, attempt: int) -> Path | None:
    """Give the job's log a second name, `logs/fit.attempt-<n>.log` (a hard link: one file, two
    names), so that it survives Snakemake deleting `logs/fit.log` when the job runs again."""
    if not log_file or not Path(log_file).is_file():
        return None
    target = Path(_layout(run_dir).attempt_log(attempt))
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(log_file, target)
    except OSError:  # no hard links on this file system: copy when the attempt ends
        return None
    return target


def set_aside_refused_log(log_file: str | Path | None, run_dir: str | Path) -> Path | None:
    """A fit refused by the run lock: its log becomes `logs/fit.refused-<n>.log`, and the job's
    log name (`logs/fit.log`, which Snakemake emptied for this job) names the latest attempt's
    log again, the one the fit holding the lock writes, which may well finish the run.

    Returns the refused log's path, or None when no attempt's log was there to name (the
    refused log is then the job's log under both names). The job's output, open on the file,
    keeps going to the refused log: its last line, the refusal, lands there."""
    if not log_file or not Path(log_file).is_file():
        return None
    layout = _layout(run_dir)
    taken = [p.name for p in Path(layout.logs).glob(Path(layout.refused_log("*")).name)]
    number = 1 + max((int(m.group(1)) for n in taken if (m := _REFUSED.search(n))), default=0)
    refused = Path(layout.refused_log(number))
    attempts = attempt_numbers(run_dir)
    latest = Path(layout.attempt_log(attempts[-1])) if attempts else None
    if latest is None or not latest.is_file():  # nothing to keep: the refusal has both names
        with contextlib.suppress(OSError):  # no hard links: logs/fit.log alone holds it
            os.link(log_file, refused)
        return None
    os.replace(log_file, refused)
    try:
        os.link(latest, log_file)
    except OSError:  # no hard links on this file system: a copy as it stands
        shutil.copyfile(latest, log_file)
    return refused


def copy_attempt_log(log_file: str | Path | None, run_dir: str | Path, attempt: int) -> None:
    """The fallback of `keep_attempt_log`: copy the log as it stands."""
    target = Path(_layout(run_dir).attempt_log(attempt))
    if log_file and Path(log_file).is_file() and not target.exists():
        with contextlib.suppress(OSError):
            shutil.copyfile(log_file, target)


def _attempts_file(run_dir: str | Path) -> Path:
    return Path(_layout(run_dir).attempts)


def read_attempts(run_dir: str | Path) -> dict[int, dict[str, Any]]:
    """`{attempt: {"resumed_from_step": ..., "started": ...}}` from metrics/fit/attempts.json."""
    try:
        entries = json.loads(_attempts_file(run_dir).read_text())
    except (OSError, ValueError):
        return {}
    return {int(e["attempt"]): e for e in entries if isinstance(e, dict) and "attempt" in e}


def _killed_attempt_seconds(run_dir: str | Path, entry: Mapping[str, Any]) -> float:
    """The training time of an attempt that ended without recording it (SIGKILL, OOM, a lost
    node): from its start to its last checkpoint, the work that the next attempt kept."""
    try:
        started = datetime.datetime.fromisoformat(entry["started"]).timestamp()
        saved = Path(_layout(run_dir).last_checkpoint_state).stat().st_mtime
    except (KeyError, ValueError, OSError):
        return 0.0
    return round(max(0.0, saved - started), 3)


def start_attempt(run_dir: str | Path, attempt: int, resumed_from_step: int | None) -> None:
    """Record the attempt (only the fit holding the run's lock writes this file); an earlier
    attempt that was killed gets its time up to its last checkpoint."""
    entries = read_attempts(run_dir)
    for entry in entries.values():
        if entry.get("seconds") is None:
            entry["seconds"] = _killed_attempt_seconds(run_dir, entry)
    entries[attempt] = {
        "attempt": attempt,
        "resumed_from_step": resumed_from_step,
        "started": now(),
        "host": socket.gethostname(),
    }
    write_json_atomic(_attempts_file(run_dir), [entries[n] for n in sorted(entries)])


def finish_attempt(run_dir: str | Path, attempt: int, seconds: float) -> float:
    """Record how long the attempt ran; return the fit's time over all its attempts (a fresh
    start counts from itself: attempts before it belonged to another fit)."""
    entries = read_attempts(run_dir)
    if attempt in entries:
        entries[attempt]["seconds"] = round(seconds, 3)
        write_json_atomic(_attempts_file(run_dir), [entries[n] for n in sorted(entries)])
    first = max(
        (n for n, e in entries.items() if n <= attempt and e.get("resumed_from_step") is None),
        default=attempt,
    )
    return round(sum(entries[n].get("seconds") or 0.0 for n in entries if first <= n <= attempt), 3)


def merge_attempt_metrics(run_dir: str | Path) -> Path | None:
    """Write `metrics/fit/metrics.csv`: the attempts' CSV logs in order, with an `attempt`
    column, and the latest attempt's `hparams.yaml` beside it. Rows of an earlier attempt from
    the step a later attempt resumed at (or all of them, when it started over) are left out:
    that later attempt trained those steps again.
    """
    root = Path(_layout(run_dir).metrics("fit"))
    rows: list[dict[str, str]] = []
    columns: list[str] = []
    attempts = read_attempts(run_dir)
    numbers = sorted(
        int(m.group(1)) for p in root.glob("attempt-*") if (m := _ATTEMPT.search(p.name))
    )
    for n in numbers:
        folder = root / f"attempt-{n}"
        cut = attempts.get(n, {}).get("resumed_from_step") or 0
        rows = [r for r in rows if _step(r) < cut]
        try:
            with open(folder / "metrics.csv", newline="") as f:
                reader = csv.DictReader(f)
                new = list(reader)
                columns += [c for c in reader.fieldnames or [] if c not in columns]
        except OSError:
            continue
        rows += [{**r, "attempt": str(n)} for r in new]
    if numbers:  # the hparams the loggers got, beside the merged metrics, as for one attempt
        latest = root / f"attempt-{numbers[-1]}" / "hparams.yaml"
        if latest.is_file():
            write_text_atomic(root / "hparams.yaml", latest.read_text())
    if not rows:
        return None
    fields = ["attempt", *[c for c in columns if c != "attempt"]]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields, restval="")
    writer.writeheader()
    writer.writerows(rows)
    out = Path(_layout(run_dir).fit_metrics_csv)
    write_text_atomic(out, buffer.getvalue())
    return out


def _step(row: Mapping[str, str]) -> float:
    try:
        return float(row.get("step") or 0)
    except ValueError:
        return 0.0


# -- resume or start over ----------------------------------------------------------------------
@dataclass(frozen=True)
class FitPlan:
    """What the fit job does with the run folder it found."""

    resume_from: Path | None  # the checkpoint to resume, or None to start fresh
    attempt: int  # this attempt's number (1 after a fresh start)
    moved_to: Path | None  # where an earlier fit's files went, if they were moved aside
    message: str  # one line for the log
    finished: dict[str, Any] | None = None  # the fit.done record of a fit that had finished
    continued: tuple[str, ...] = ()  # each time it was given more epochs: "20 -> 40"


def request_restart(run_dir: str | Path) -> Path:
    """Ask the next fit of `run_dir` to start over: it moves the run's checkpoints, metrics and
    attempt logs aside to `checkpoints.old-<n>/` (nothing is deleted). For the command line's
    `--restart`; by hand: `touch results/<proj>/<exp>/<run>/RESTART`."""
    flag = Path(_layout(run_dir).restart_flag)
    flag.parent.mkdir(parents=True, exist_ok=True)
    flag.write_text(f"restart requested {now()}\n")
    return flag


def restart_hint(run_dir: str | Path) -> str:
    """The way out of a checkpoint that cannot be resumed, for messages."""
    layout = _layout(run_dir)
    return (
        f"To start this run over (its checkpoints are moved to {layout.old_checkpoints('<n>')}/, "
        f"not deleted): `touch {layout.restart_flag}` (or `main.py exec --restart`), then rerun"
    )


def move_aside(run_dir: str | Path, why: str) -> Path:
    """Move the fit's checkpoints, metrics, attempt logs, hparams and archived config into a new
    `checkpoints.old-<n>/` of the run folder. Returns that folder."""
    layout = _layout(run_dir)
    pattern = Path(layout.old_checkpoints("*"))
    taken = [
        int(m.group(1)) for p in pattern.parent.glob(pattern.name) if (m := _OLD.fullmatch(p.name))
    ]
    dest = Path(layout.old_checkpoints(max(taken, default=0) + 1))
    source = Path(layout.checkpoints)
    if source.is_dir():
        source.rename(dest)
    else:
        dest.mkdir(parents=True)
    kept = [layout.hparams, *layout.archives, layout.restart_flag]
    moves = [(Path(layout.metrics("fit")), dest / "metrics")]
    moves += [(Path(path), dest / Path(path).name) for path in kept]
    attempt_logs = Path(layout.logs).glob(Path(layout.attempt_log("*")).name)
    moves += [(p, dest / "logs" / p.name) for p in attempt_logs]
    for old, new in moves:
        if old.exists():
            new.parent.mkdir(parents=True, exist_ok=True)
            old.rename(new)
    write_json_atomic(dest / "moved.json", {"why": why, "moved": now()})
    return dest


CONTINUE_SETTING = "continue_fits"  # workflow config: a fit given more epochs continues


def plan_fit(
    run_dir: str | Path, current: Mapping[str, Any], may_continue: bool = False
) -> FitPlan:
    """Decide, under the run's lock, whether this fit resumes `checkpoints/last.ckpt` or starts
    fresh, moving an earlier fit aside when its checkpoints must not be resumed: a restart was
    asked for, or the config or overrides changed. Records the current fingerprint for the
    next attempt.

    A fit of this very run that had finished is the run's result (`FitPlan.finished`): nothing
    trains. That happens when a killed Snakemake left a job running, which finished while the
    job submitted in its place waited. A forced rerun (`-R fit`) of a finished fit asks for a
    restart (dltemplate.workflow.on_start), and so does `main.py exec --restart`. With
    `may_continue` (the workflow config's `continue_fits`), a fit whose only change is a larger
    trainer.max_epochs continues from its last checkpoint (`more_epochs`)."""
    layout = _layout(run_dir)
    folder, last = Path(layout.checkpoints), Path(layout.last_checkpoint)
    restart = Path(layout.restart_flag)
    state = read_state(run_dir)
    has_checkpoints = folder.is_dir() and any(folder.glob("*.ckpt"))
    why = None
    if restart.exists():
        why = f"a restart was asked for ({restart})"
    elif has_checkpoints and state is None:
        why = f"{folder} has no record ({Path(layout.fit_state).name}) of the config that made them"
    elif state is not None and last.is_file() and (more := more_epochs(state, current)):
        if may_continue:
            return _continue(run_dir, state, current, more)
        changes = _differences(state.get("fingerprint", {}), current)
        why = (
            f"the run changed since they were made ({changes}; to continue from {last.name} "
            f"instead, run with --config {CONTINUE_SETTING}=true)"
        )
    elif state is not None and state.get("fingerprint") != dict(current):
        changes = _differences(state.get("fingerprint", {}), current)
        why = f"the run changed since they were made ({changes})"
    elif state is not None and state.get("finished"):
        kept = finished_result(run_dir, state)
        if kept is not None:
            message = (
                f"The fit of this run finished at {state.get('finished_at')}, with this config: "
                f"its result is kept and nothing trains. {restart_hint(run_dir)}"
            )
            return FitPlan(None, max(attempt_numbers(run_dir), default=0), None, message, kept)
        why = "that fit had finished, and it left no record of its result to keep"
    elif has_checkpoints and not last.is_file():
        why = f"there is no {last.name} to resume"
    moved_to = None
    if why is not None and has_checkpoints:
        moved_to = move_aside(run_dir, why)
    elif why is not None:  # an earlier fit that left no checkpoint: nothing to keep aside
        restart.unlink(missing_ok=True)
    attempt = max(attempt_numbers(run_dir), default=0) + 1
    if why is None and last.is_file():
        continued = tuple((state or {}).get("continued", ()))
        return FitPlan(last, attempt, None, f"Resuming from {last}", continued=continued)
    write_state(run_dir, {"fingerprint": dict(current), "finished": False, "started": now()})
    if moved_to is not None:
        message = f"Starting fresh: moved the earlier fit to {moved_to}/ because {why}"
    elif why is not None:
        message = f"Starting fresh ({why}; the earlier fit left no checkpoint to keep)"
    else:
        message = "Starting fresh"
    return FitPlan(None, attempt, moved_to, message)
