"""Keep what the test job's plots need, without a second forward pass: a classifier's
confusion counts, a multi-label classifier's counts per label, a regression's (prediction,
target) pairs."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import lightning as L
import torch

from dltemplate.jobs.task_kind import (
    MULTILABEL,
    REGRESSION,
    batch_target,
    task_kind,
)
from dltemplate.records import write_text_atomic


class TestOutputs(L.Callback):
    """Collects the test set's outputs against its targets, by the task's kind
    (dltemplate.jobs.task_kind): the (true class, predicted class) counts of a classifier, the
    true/false positives/negatives of each label of a multi-label classifier (a label is
    predicted when the sigmoid of its output is >= 0.5), the predicted and true values of a
    regression (every output of every sample).

    The task wrapper's `test_step` calls the module once per batch; a forward hook keeps that
    output, and `on_test_batch_end` pairs it with the batch's targets. The kind is decided on
    the first batch; a batch that does not fit it (or has no targets, or another kind) turns
    the callback off for the run.
    """

    __test__ = False  # not a pytest test class, despite its name

    def __init__(self) -> None:
        self.kind: str | None = None
        self.supported = True
        self.counts: torch.Tensor | None = None  # classification: (C, C), rows: true class
        self.label_counts: torch.Tensor | None = None  # multi-label: (L, 4): tp, fp, fn, tn
        self.pairs: list[tuple[torch.Tensor, torch.Tensor]] = []  # regression: (N, K) each
        self._output: torch.Tensor | None = None
        self._hook = None

    def on_test_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.kind, self.supported, self.counts, self.pairs = None, True, None, []
        self.label_counts = None
        self._output = None
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
        target = batch_target(batch, pl_module)
        kind = task_kind(pl_module, output, target) if target is not None else None
        if kind is None or self.kind not in (None, kind):
            self.supported = False
            return
        self.kind = kind
        output = output.detach()
        if kind == REGRESSION:
            n = len(output)
            self.pairs.append((output.reshape(n, -1).float(), target.reshape(n, -1).float()))
            return
        if kind == MULTILABEL:
            p, t = output.sigmoid() >= 0.5, target >= 0.5
            counts = [p & t, p & ~t, ~p & t, ~p & ~t]
            counts = torch.stack([c.sum(dim=0) for c in counts], dim=1)
            self.label_counts = counts if self.label_counts is None else self.label_counts + counts
            return
        classes = output.shape[1]
        if not bool(((target >= 0) & (target < classes)).all()):
            self.supported = False
            return
        if self.counts is None:
            self.counts = torch.zeros(classes, classes, dtype=torch.long, device=output.device)
        pairs = target.long() * classes + output.argmax(dim=1)
        self.counts += torch.bincount(pairs, minlength=classes * classes).view(classes, classes)

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._hook is not None:
            self._hook.remove()
            self._hook = None
        # Each process saw its share of the test set; put them together (a no-op on one device).
        if self.counts is not None:
            self.counts = trainer.strategy.reduce(self.counts, reduce_op="sum").long().cpu()
        if self.label_counts is not None:
            self.label_counts = (
                trainer.strategy.reduce(self.label_counts, reduce_op="sum").long().cpu()
            )
        if self.pairs:
            predicted = torch.cat([p for p, _ in self.pairs])
            true = torch.cat([t for _, t in self.pairs])
            if trainer.world_size > 1:  # the shares are of equal size (the sampler pads them)
                predicted = trainer.strategy.all_gather(predicted).flatten(0, 1)
                true = trainer.strategy.all_gather(true).flatten(0, 1)
            self.pairs = [(predicted.cpu(), true.cpu())]

    def write_confusion_csv(self, path: str | Path) -> bool:
        """Write the confusion counts (header: `true\\predicted`, then the classes); False if
        none (a stale file of an earlier test is removed)."""
        if not self.supported or self.counts is None:
            Path(path).unlink(missing_ok=True)
            return False
        classes = self.counts.shape[0]
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["true\\predicted", *range(classes)])
        for i, row in enumerate(self.counts.tolist()):
            writer.writerow([i, *row])
        write_text_atomic(path, buffer.getvalue())
        return True

    def write_regression_csv(self, path: str | Path) -> bool:
        """Write one row per test sample: `pred_<k>` and `target_<k>` for each output k; False
        if none (a stale file of an earlier test is removed)."""
        if not self.supported or not self.pairs:
            Path(path).unlink(missing_ok=True)
            return False
        predicted, true = self.pairs[0]
        width = predicted.shape[1]
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(
            [*(f"pred_{k}" for k in range(width)), *(f"target_{k}" for k in range(width))]
        )
        for p, t in zip(predicted.tolist(), true.tolist(), strict=True):
            writer.writerow([f"{v:.6g}" for v in (*p, *t)])
        write_text_atomic(path, buffer.getvalue())
        return True

    def write_label_csv(self, path: str | Path) -> bool:
        """Write a multi-label classifier's counts, one row per label (`label, tp, fp, fn,
        tn`); False if none (a stale file of an earlier test is removed)."""
        if not self.supported or self.label_counts is None:
            Path(path).unlink(missing_ok=True)
            return False
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["label", "tp", "fp", "fn", "tn"])
        for label, row in enumerate(self.label_counts.tolist()):
            writer.writerow([label, *row])
        write_text_atomic(path, buffer.getvalue())
        return True
