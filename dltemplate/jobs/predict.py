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
from dltemplate.jobs.trainer import make_trainer
from dltemplate.records import portable_path, write_json_atomic


class PredictionCsvWriter(BasePredictionWriter):
    """Streams predictions to CSV, one row per sample, in the predict split's order.

    2-D float outputs with several columns are class scores: the row holds the predicted class
    and the softmax probabilities. Other outputs are written as their flattened values. At the
    end of the loop it logs the counts of samples and batches to the trainer's loggers
    (`predict/samples`, `predict/batches`): Lightning's predict loop allows no `self.log`.
    """

    def __init__(self, path: str | Path) -> None:
        super().__init__(write_interval="batch")
        self.path = Path(path)
        self.tmp = self.path.with_name(f".{self.path.name}.tmp")
        self.rows = 0
        self.batches = 0
        self._file = None
        self._writer = None

    def _open(self, outputs: torch.Tensor) -> None:
        self.tmp.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.tmp, "w", newline="")  # noqa: SIM115 - closed in finish()
        self._writer = csv.writer(self._file)
        width = outputs[0].numel() if len(outputs) else 0
        if self._is_scores(outputs):
            header = ["index", "predicted_class", *(f"prob_{i}" for i in range(width))]
        else:
            header = ["index", *(f"output_{i}" for i in range(width))]
        self._writer.writerow(header)

    @staticmethod
    def _is_scores(outputs: torch.Tensor) -> bool:
        return outputs.ndim == 2 and outputs.shape[1] > 1 and outputs.is_floating_point()

    def write_on_batch_end(
        self, trainer, pl_module, prediction, batch_indices, batch, batch_idx, dataloader_idx=0
    ):
        outputs = prediction.detach().float().cpu()
        if self._writer is None:
            self._open(outputs)
        if self._is_scores(outputs):
            probs = outputs.softmax(dim=1)
            classes = probs.argmax(dim=1)
            for row, (cls, p) in enumerate(zip(classes.tolist(), probs.tolist(), strict=True)):
                self._writer.writerow([self.rows + row, cls, *(f"{v:.6g}" for v in p)])
        else:
            flat = outputs.reshape(len(outputs), -1).tolist()
            for row, values in enumerate(flat):
                self._writer.writerow([self.rows + row, *(f"{v:.6g}" for v in values)])
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
