"""The validate and test jobs: evaluate a fitted checkpoint on the val or the test split."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dltemplate.jobs.checkpointing import check_checkpoint, safe_checkpoint_loading, weights_only
from dltemplate.jobs.common import build_for_job, checkpoint_hint, fitted_checkpoint
from dltemplate.jobs.confusion import ConfusionCounter
from dltemplate.jobs.fit import scalar_metrics
from dltemplate.jobs.trainer import make_trainer
from dltemplate.layout import RunLayout
from dltemplate.records import portable_path, write_json_atomic


def _evaluate(
    job: str,
    *,
    run_dir: str | Path,
    config_file: str,
    overrides: Mapping[str, Any],
    seed: int,
    threads: int,
    fit_done: str | Path,
    done_file: str | Path,
    source: str,
) -> dict[str, Any]:
    """Run Lightning's `trainer.<job>` (validate or test) on the run's fitted checkpoint and
    write `done_file` with its scalar metrics; a test also keeps its confusion counts."""
    checkpoint = fitted_checkpoint(fit_done)
    built = build_for_job(job, config_file, overrides, seed, threads, source)
    check_checkpoint(checkpoint, built.task_wrapper, checkpoint_hint(fit_done, source))
    built.task_wrapper.save_hyperparameters(built.hparams)  # Lightning gives them to the loggers
    counter = ConfusionCounter() if job == "test" else None
    settings = dict(built.trainer_kwargs)
    if counter is not None:
        settings["callbacks"] = [*settings.get("callbacks", []), counter]
    trainer = make_trainer(settings, run_dir, job)
    with safe_checkpoint_loading():
        getattr(trainer, job)(
            built.task_wrapper,
            datamodule=built.data_wrapper,
            ckpt_path=str(checkpoint),
            weights_only=weights_only(),
        )
    record = {
        "checkpoint": portable_path(checkpoint),
        "metrics": scalar_metrics(trainer.callback_metrics),
    }
    confusion = Path(RunLayout.at(run_dir).test_confusion)
    if counter is not None and trainer.is_global_zero and counter.write_csv(confusion):
        record["confusion_matrix"] = portable_path(confusion)
    write_json_atomic(done_file, record)
    return record


def test_run(*, source: str = "the registry", **job: Any) -> dict[str, Any]:
    """Test the run's best checkpoint; write `done_file` with `{"metrics": {"test/...": ...}}`.

    Takes run_dir, config_file, overrides, seed, threads, fit_done and done_file. For a
    classifier the record also names `test_confusion.csv`, the test set's confusion counts.
    """
    return _evaluate("test", source=source, **job)


def validate_run(*, source: str = "the registry", **job: Any) -> dict[str, Any]:
    """Run the validation loop on the run's best checkpoint (or its `ckpt:`); write
    `done_file` with `{"metrics": {"val/...": ...}}`. Takes what `test_run` takes."""
    return _evaluate("validate", source=source, **job)


test_run.__test__ = False  # not a pytest test, despite its name
