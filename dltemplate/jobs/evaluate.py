"""The validate and test jobs: evaluate a fitted checkpoint on the val or the test split."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dltemplate.jobs.checkpointing import check_checkpoint, safe_checkpoint_loading, weights_only
from dltemplate.jobs.common import build_for_job, checkpoint_hint, fitted_checkpoint
from dltemplate.jobs.fit_training import scalar_metrics
from dltemplate.jobs.test_outputs import TestOutputs
from dltemplate.jobs.trainer import lightning_refusals, make_trainer
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
    write `done_file` with its scalar metrics.

    A test's record also names the data of its plot: a classifier's `test_confusion.csv`
    (the test set's confusion counts), a multi-label classifier's `test_multilabel.csv` (its
    counts per label), a regression's `test_regression.csv` (predicted and true values of every
    test sample); see dltemplate.jobs.task_kind for how the kind is decided.
    """
    checkpoint = fitted_checkpoint(fit_done)
    built = build_for_job(job, config_file, overrides, seed, threads, source)
    check_checkpoint(checkpoint, built.task_wrapper, checkpoint_hint(fit_done, source))
    built.task_wrapper.save_hyperparameters(built.hparams)  # Lightning gives them to the loggers
    counter = TestOutputs() if job == "test" else None
    settings = dict(built.trainer_kwargs)
    if counter is not None:
        settings["callbacks"] = [*settings.get("callbacks", []), counter]
    trainer = make_trainer(settings, run_dir, job)
    with safe_checkpoint_loading(), lightning_refusals(job):
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
    layout = RunLayout.at(run_dir)
    if counter is not None:
        for key, path, write in (
            ("confusion_matrix", layout.test_confusion, counter.write_confusion_csv),
            ("multilabel", layout.test_multilabel, counter.write_label_csv),
            ("regression", layout.test_regression, counter.write_regression_csv),
        ):
            if trainer.is_global_zero and write(path):
                record[key] = portable_path(path)
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
