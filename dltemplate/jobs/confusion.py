"""Count a classifier's confusion matrix during the test job, without a second forward pass."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import lightning as L
import torch

from dltemplate.records import write_text_atomic


class ConfusionCounter(L.Callback):
    """Counts (true class, predicted class) pairs over the test set.

    The task wrapper's `test_step` calls the module once per batch; a forward hook keeps that
    output, and `on_test_batch_end` pairs it with the batch's targets. Only class scores are
    counted: a (B, C) float output with C > 1 and integer targets of shape (B,). Anything else
    (regression, segmentation, a batch without targets) turns the counter off for the run.
    """

    def __init__(self) -> None:
        self.counts: torch.Tensor | None = None  # (C, C), rows: true class
        self.supported = True
        self._output: torch.Tensor | None = None
        self._hook = None

    def on_test_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.counts, self.supported, self._output = None, True, None
        self._hook = pl_module.register_forward_hook(self._keep_output)

    def _keep_output(self, module: Any, args: Any, output: Any) -> None:
        self._output = output if isinstance(output, torch.Tensor) else None

    def on_test_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        output, self._output = self._output, None
        if not self.supported:
            return
        target = batch[1] if isinstance(batch, list | tuple) and len(batch) >= 2 else None
        if not self._is_classification(output, target):
            self.supported = False
            return
        classes = output.shape[1]
        if self.counts is None:
            self.counts = torch.zeros(classes, classes, dtype=torch.long, device=output.device)
        predicted = output.detach().argmax(dim=1)
        pairs = target.long() * classes + predicted
        self.counts += torch.bincount(pairs, minlength=classes * classes).view(classes, classes)

    @staticmethod
    def _is_classification(output: Any, target: Any) -> bool:
        return (
            isinstance(output, torch.Tensor)
            and isinstance(target, torch.Tensor)
            and output.ndim == 2
            and output.shape[1] > 1
            and output.is_floating_point()
            and target.ndim == 1
            and not target.is_floating_point()
            and target.shape[0] == output.shape[0]
            and bool(((target >= 0) & (target < output.shape[1])).all())
        )

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._hook is not None:
            self._hook.remove()
            self._hook = None
        if self.counts is not None:
            # Each process counted its share of the test set; add them up (a no-op on one device).
            self.counts = trainer.strategy.reduce(self.counts, reduce_op="sum").long().cpu()

    def write_csv(self, path: str | Path) -> bool:
        """Write the counts (header: `true\\predicted`, then the classes); False if none."""
        if not self.supported or self.counts is None:
            Path(path).unlink(missing_ok=True)  # a stale matrix of an earlier test must not stay
            return False
        classes = self.counts.shape[0]
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["true\\predicted", *range(classes)])
        for i, row in enumerate(self.counts.tolist()):
            writer.writerow([i, *row])
        write_text_atomic(path, buffer.getvalue())
        return True
