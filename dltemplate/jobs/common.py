"""What the fit, test and predict jobs share: threads, building, the checkpoint to load."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dltemplate.config.build import BuiltRun, build_run
from dltemplate.contracts import set_threads_of
from dltemplate.errors import UserError
from dltemplate.records import read_json
from dltemplate.workflow.targets import rerun_command


def set_threads(threads: int) -> None:
    """Keep torch inside the cores Snakemake gave this job, so -j N never oversubscribes."""
    import torch

    torch.set_num_threads(max(1, threads))


def build_for_job(
    job: str, config_file: str, overrides: Mapping[str, Any], seed: int, threads: int, source: str
) -> BuiltRun:
    set_threads(threads)
    built = build_run(config_file, job=job, overrides=overrides, seed=seed, source=source)
    set_threads_of(built.data_wrapper)(threads)
    return built


def fitted_checkpoint(fit_done: str | Path) -> Path:
    """The best checkpoint that a fit recorded (its last one when it recorded no best); or,
    for a run declared with `ckpt:`, that checkpoint file itself."""
    if Path(fit_done).suffix != ".done":
        return Path(fit_done)
    record = read_json(fit_done)
    for key in ("best_checkpoint", "last_checkpoint"):
        path = record.get(key)
        if path and Path(path).is_file():
            return Path(path)
    raise UserError(
        f"{fit_done} names no checkpoint that exists ({record.get('best_checkpoint')}); "
        f"rerun the fit: {rerun_command(fit_done, 'fit')}"
    )


def checkpoint_hint(fit_done: str | Path, source: str) -> str:
    """What to do when the checkpoint that test or predict loads does not fit the run."""
    if Path(fit_done).suffix != ".done":
        return f"Check the run's ckpt: in {source} (and its config: it must build that model)"
    return f"Fit the run again: {rerun_command(fit_done, 'fit')}"
