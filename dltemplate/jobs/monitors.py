"""Check before training that every monitored metric exists and is watched the right way.

The best checkpoint, early stopping and plateau schedulers each watch a metric with a mode. A
name that no metric has, or a mode against the metric's nature (`val/loss` with "max"), would
only show after the first epoch, or never. A task wrapper that names what it logs
(`logged_metric_names()`, as BasicTaskWrapper does) is checked before anything is written;
for any other LightningModule, `MonitorCheck` compares the names with what the sanity-check
validation logged, before the first training step.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any

import lightning as L

from dltemplate.contracts import logged_metric_names_of, lr_scheduler_of
from dltemplate.errors import UserError
from dltemplate.results.metric_policy import known_direction


class MonitorError(UserError):
    """A monitored metric that is never logged, or a mode against the metric's nature."""


def monitors(trainer: L.Trainer, task_wrapper: Any) -> list[tuple[str, str, str | None]]:
    """(who, metric, mode) for the callbacks that watch a metric and the plateau scheduler."""
    found = []
    for callback in trainer.callbacks:
        metric = getattr(callback, "monitor", None)
        if isinstance(metric, str):
            found.append((type(callback).__name__, metric, getattr(callback, "mode", None)))
    schedule = lr_scheduler_of(task_wrapper)
    if isinstance(schedule, Mapping) and isinstance(schedule.get("monitor"), str):
        found.append(("the lr scheduler", schedule["monitor"], None))
    return found


def check_modes(watched: Iterable[tuple[str, str, str | None]], fix: str) -> None:
    for who, metric, mode in watched:
        nature = known_direction(metric)
        if mode in ("min", "max") and nature and mode != nature:
            raise MonitorError(
                f"{who} watches {metric} with mode {mode!r}, but {metric} is better when "
                f"{'lower' if nature == 'min' else 'higher'}: set mode {nature!r} ({fix})"
            )


def check_names(
    watched: Iterable[tuple[str, str, str | None]], logged: Iterable[str], fix: str
) -> None:
    names = sorted(set(logged))
    for who, metric, _ in watched:
        if metric not in names:
            close = difflib.get_close_matches(metric, names, n=1, cutoff=0.5)
            hint = f"did you mean {close[0]}? " if close else ""
            raise MonitorError(
                f"{who} watches {metric}, which the task wrapper never logs; {hint}it logs "
                f"{', '.join(names) or 'nothing'} ({fix})"
            )


def check_before_fit(trainer: L.Trainer, task_wrapper: Any, fix: str) -> L.Callback | None:
    """Raise MonitorError for a wrong mode, and for an unknown name when the task wrapper
    declares its metrics; else return the callback that checks the names after the sanity
    check (add it to the trainer)."""
    watched = monitors(trainer, task_wrapper)
    check_modes(watched, fix)
    names = logged_metric_names_of(task_wrapper)
    if names is not None:
        check_names(watched, names, fix)
        return None
    return MonitorCheck(watched, fix)


class MonitorCheck(L.Callback):
    """Checks the watched `val/` metrics against what the sanity-check validation logged."""

    def __init__(self, watched: list[tuple[str, str, str | None]], fix: str) -> None:
        self.watched = [w for w in watched if not w[1].startswith("train")]
        self.fix = fix

    def on_sanity_check_end(self, trainer, pl_module) -> None:
        check_names(self.watched, trainer.callback_metrics, self.fix)
