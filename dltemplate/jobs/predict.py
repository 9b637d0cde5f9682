"""The predict job: write a fitted checkpoint's predictions as a CSV a person can open."""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.callbacks import BasePredictionWriter

from dltemplate.jobs.checkpointing import check_checkpoint, safe_checkpoint_loading, weights_only
from dltemplate.jobs.common import build_for_job, checkpoint_hint, fitted_checkpoint
from dltemplate.jobs.task_kind import (
    CLASSIFICATION,
    MULTILABEL,
    REGRESSION,
    batch_target,
    task_kind,
)
from dltemplate.jobs.trainer import make_trainer
from dltemplate.records import portable_path, write_json_atomic


def _value(v: float | int) -> str:
    return str(v) if isinstance(v, int) else f"{v:.6g}"


def prediction_columns(kind: str | None, width: int, target_width: int | None) -> list[str]:
    """The header of predictions.csv for outputs of `width` values per sample; `target_width`:
    the values of a sample's target, None when the predict split has no targets."""
    targets = target_width is not None

    def numbered(prefix: str, n: int) -> list[str]:
        return [f"{prefix}_{i}" for i in range(n)]

    if kind == CLASSIFICATION:
        return [
            "index",
            "predicted_class",
            *(["target"] if targets else []),
            *numbered("prob", width),
        ]
    if kind == MULTILABEL:
        return [
            "index",
            *numbered("pred", width),
            *(numbered("target", width) if targets else []),
            *numbered("prob", width),
        ]
    if kind == REGRESSION and width == 1:
        return ["index", "prediction", *(["target"] if targets else [])]
    if kind == REGRESSION:
        return ["index", *numbered("pred", width), *(numbered("target", width) if targets else [])]
    return ["index", *numbered("output", width), *numbered("target", target_width or 0)]


class PredictionCsvWriter(BasePredictionWriter):
    """Streams predictions to CSV, one row per sample, in the predict split's order, with the
    sample's target beside its prediction whenever the predict split has targets.

    The columns follow the task's kind (dltemplate.jobs.task_kind), decided on the first batch:
    classification writes `predicted_class`, `target` and the softmax probabilities `prob_<c>`;
    multi-label classification `pred_<l>` (sigmoid >= 0.5), `target_<l>` and `prob_<l>`;
    regression `prediction` and `target` for one output, `pred_<k>` and `target_<k>` for
    several; anything else its flattened outputs `output_<i>` (and `target_<i>`). At the end of
    the loop it logs the counts of samples and batches to the trainer's loggers
    (`predict/samples`, `predict/batches`): Lightning's predict loop allows no `self.log`.
    """

    def __init__(self, path: str | Path) -> None:
        super().__init__(write_interval="batch")
        self.path = Path(path)
        self.tmp = self.path.with_name(f".{self.path.name}.tmp")
        self.rows = 0
        self.batches = 0
        self.kind: str | None = None
        self.with_targets = False
        self._file = None
        self._writer = None

    def _open(self, kind: str | None, outputs: torch.Tensor, target: torch.Tensor | None) -> None:
        self.tmp.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.tmp, "w", newline="")  # noqa: SIM115 - closed in finish()
        self._writer = csv.writer(self._file)
        self.kind, self.with_targets = kind, target is not None
        width = outputs[0].numel() if len(outputs) else 0
        target_width = None if target is None else (target[0].numel() if len(target) else 0)
        self._writer.writerow(prediction_columns(kind, width, target_width))

    def _rows(self, outputs: torch.Tensor, target: torch.Tensor | None) -> list[list]:
        n = len(outputs)
        flat = outputs.reshape(n, -1)
        targets = [[] for _ in range(n)]
        if self.with_targets:
            if target is None:
                raise ValueError("a batch of the predict split has no targets, unlike the first")
            targets = target.reshape(n, -1).tolist()
        if self.kind == CLASSIFICATION:
            probs = flat.softmax(dim=1)
            predicted = [[c] for c in probs.argmax(dim=1).tolist()]
            return [
                [*p, *t, *q] for p, t, q in zip(predicted, targets, probs.tolist(), strict=True)
            ]
        if self.kind == MULTILABEL:
            probs = flat.sigmoid()
            predicted = (probs >= 0.5).long().tolist()
            return [
                [*p, *t, *q] for p, t, q in zip(predicted, targets, probs.tolist(), strict=True)
            ]
        return [[*p, *t] for p, t in zip(flat.tolist(), targets, strict=True)]

    def write_on_batch_end(
        self, trainer, pl_module, prediction, batch_indices, batch, batch_idx, dataloader_idx=0
    ):
        outputs = prediction.detach().float().cpu()
        target = batch_target(batch, pl_module)
        target = None if target is None else target.detach().cpu()
        kind = task_kind(pl_module, outputs, target) if self._writer is None else self.kind
        self.write(outputs, target, kind)

    def write(self, outputs: torch.Tensor, target: torch.Tensor | None, kind: str | None) -> None:
        """Append one batch's rows; the first batch decides the columns (with `kind`)."""
        if self._writer is None:
            if target is not None and kind is None and len(target) != len(outputs):
                target = None  # not one target per sample: write the outputs alone
            self._open(kind, outputs, target)
        if not self.with_targets:
            target = None
        for row, values in enumerate(self._rows(outputs, target)):
            self._writer.writerow([self.rows + row, *(_value(v) for v in values)])
        self.rows += len(outputs)
        self.batches += 1

    def on_predict_end(self, trainer, pl_module) -> None:
        metrics = {"predict/samples": self.rows, "predict/batches": self.batches}
        for logger in trainer.loggers:  # each logs on rank 0 only
            logger.log_metrics(metrics, step=0)

    def finish(self) -> None:
        """Move the finished CSV into place (a failed predict leaves no CSV behind)."""
        if self._file is None:
            self.tmp.write_text("index\n")
        else:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
        os.replace(self.tmp, self.path)


def predict_run(
    *,
    run_dir: str | Path,
    config_file: str,
    overrides: Mapping[str, Any],
    seed: int,
    threads: int,
    fit_done: str | Path,
    predictions_file: str | Path,
    done_file: str | Path,
    source: str = "the registry",
) -> dict[str, Any]:
    """Predict the predict split with the run's best checkpoint into `predictions_file`.

    The trackers get the run's hparams plus `predict.checkpoint` and `predict.predictions`, and
    the counts of predicted samples and batches.
    """
    checkpoint = fitted_checkpoint(fit_done)
    built = build_for_job("predict", config_file, overrides, seed, threads, source)
    check_checkpoint(checkpoint, built.task_wrapper, checkpoint_hint(fit_done, source))
    files = {
        "checkpoint": portable_path(checkpoint),
        "predictions": portable_path(predictions_file),
    }
    built.task_wrapper.save_hyperparameters({**built.hparams, "predict": files})  # to the loggers
    writer = PredictionCsvWriter(predictions_file)
    settings = dict(built.trainer_kwargs)
    settings["callbacks"] = [*settings.get("callbacks", []), writer]
    trainer = make_trainer(settings, run_dir, "predict")
    with safe_checkpoint_loading():
        trainer.predict(
            built.task_wrapper,
            datamodule=built.data_wrapper,
            ckpt_path=str(checkpoint),
            return_predictions=False,
            weights_only=weights_only(),
        )
    writer.finish()
    record = {
        "checkpoint": portable_path(checkpoint),
        "predictions": portable_path(predictions_file),
        "rows": writer.rows,
    }
    write_json_atomic(done_file, record)
    return record
