"""The fit job: train a run and keep its checkpoints, hparams, archived config and metrics."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dltemplate.archive import archive_config
from dltemplate.jobs.common import build_for_job
from dltemplate.jobs.trainer import checkpoint_dir, make_trainer
from dltemplate.records import portable_path, write_json_atomic, write_yaml_atomic


def scalar_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    return {
        k: float(v) for k, v in sorted(metrics.items()) if getattr(v, "numel", lambda: 1)() == 1
    }


def fit_run(
    *,
    run_dir: str | Path,
    config_file: str,
    overrides: Mapping[str, Any],
    seed: int,
    threads: int,
    done_file: str | Path,
    source: str = "the registry",
    archive_format: str = "py",
) -> dict[str, Any]:
    """Fit the run in `run_dir`; write `done_file` (JSON) as the last act.

    Before training it writes `hparams.yaml` (also given to the loggers) and the archived
    config in `archive_format` (py, zip or folder; see dltemplate.archive).
    """
    run_dir = Path(run_dir)
    started = time.time()
    built = build_for_job("fit", config_file, overrides, seed, threads, source)
    write_yaml_atomic(run_dir / "hparams.yaml", built.hparams)
    archive_config(
        config_file,
        run_dir,
        archive_format,
        {**built.build.overrides, "seed": built.hparams["seed"]},
    )
    built.task_wrapper.save_hyperparameters(built.hparams)
    trainer = make_trainer(built.trainer_kwargs, run_dir, "fit")
    trainer.fit(built.task_wrapper, datamodule=built.data_wrapper)
    best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    last = checkpoint_dir(run_dir) / "last.ckpt"
    record = {
        "best_checkpoint": portable_path(best) if best else None,
        "last_checkpoint": portable_path(last) if last.is_file() else None,
        "epochs": trainer.current_epoch,
        "global_step": trainer.global_step,
        "fit_seconds": round(time.time() - started, 3),
        "seed": built.hparams["seed"],
        "metrics": scalar_metrics(trainer.callback_metrics),
    }
    write_json_atomic(done_file, record)
    return record
