"""BasicTaskWrapper: a LightningModule that owns model, loss, optimizer, scheduler and metrics."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import lightning as L
import torch
from torch import nn
from torchmetrics import Metric, MetricCollection

from dltemplate.errors import ShapeError, one_line

MetricsArg = Metric | MetricCollection | Mapping[str, Metric] | None
OptimizerArg = torch.optim.Optimizer | Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]


def _collection(metrics: MetricsArg, prefix: str) -> MetricCollection | None:
    if metrics is None:
        return None
    if isinstance(metrics, Metric):
        metrics = MetricCollection([metrics])
    elif not isinstance(metrics, MetricCollection):
        metrics = MetricCollection(dict(metrics))
    return metrics.clone(prefix=prefix)  # a deep copy: no state shared with another stage


# Sums a tensor over DDP's ranks (Lightning's strategy.reduce with "sum").
SumOverRanks = Callable[[torch.Tensor], torch.Tensor]


class EpochMean:
    """The sample-weighted mean of a per-batch loss over an epoch, kept as one tensor.

    `self.log(..., on_epoch=True)` in every step costs Lightning's result bookkeeping per call
    (a device move of a torchmetrics state per call); adding into one tensor costs one op and
    gives the same epoch mean.
    """

    def __init__(self) -> None:
        self.total: torch.Tensor | None = None
        self.count = 0

    def update(self, value: torch.Tensor, n: int) -> None:
        weighted = value.detach() * n
        self.total = weighted if self.total is None else self.total + weighted
        self.count += n

    def state(self) -> dict[str, Any]:
        return {"total": self.total, "count": self.count}

    def load(self, state: Mapping[str, Any]) -> None:
        self.total, self.count = state.get("total"), int(state.get("count", 0))

    def pop(self, reduce: SumOverRanks | None = None) -> torch.Tensor | None:
        """The mean since the last pop, or None when nothing was added; then starts over.
        `reduce` sums a tensor over DDP's ranks: the mean is then over every rank's samples."""
        total, count = self.total, self.count
        self.total, self.count = None, 0
        if reduce is not None:  # every rank takes part, with or without samples of its own
            dtype = torch.float32 if total is None else total.dtype
            mine = torch.zeros((), dtype=torch.float64) if total is None else total.double()
            summed = reduce(torch.stack([mine, mine.new_tensor(float(count))]))
            return None if summed[1] == 0 else (summed[0] / summed[1]).to(dtype)
        return None if total is None else total / count


TARGET_KEYS = ("target", "targets", "label", "labels", "y")


def split_batch(batch: Any) -> tuple[tuple | dict, Any]:
    """A batch as (model inputs, target); the target is None when the batch has none.

    - `(x, y)` -> `((x,), y)`; `(x,)` -> `((x,), None)`; `(x, y, *extra)` -> `((x, *extra), y)`:
      extra fields (masks, lengths) go to the model after `x`;
    - a dict (`{"input_ids": ..., "attention_mask": ..., "labels": ...}`) -> (the other keys,
      passed to the model as keyword arguments, the value of the first key of TARGET_KEYS);
    - anything else is the model's one input, without a target.
    Give BasicTaskWrapper a `split_batch` function for other layouts.
    """
    if isinstance(batch, dict):
        key = next((k for k in TARGET_KEYS if k in batch), None)
        return {k: v for k, v in batch.items() if k != key}, batch.get(key) if key else None
    if isinstance(batch, list | tuple):
        if len(batch) == 1:
            return (batch[0],), None
        return (batch[0], *batch[2:]), batch[1]
    return (batch,), None


_SPLIT_HINT = (
    "return (inputs, target) from the dataset, or give BasicTaskWrapper a split_batch function"
)


def _shape_hint(output: torch.Tensor, target: torch.Tensor) -> str:
    if output.dim() == target.dim() + 1 and output.shape[-1] == 1:
        return (
            f"return targets of shape {[*target.shape, 1]} from the dataset, or set "
            "squeeze_output=True in BasicTaskWrapper (no silent broadcasting)"
        )
    if target.dim() == output.dim() + 1 and target.shape[-1] == 1:
        return "return targets of shape [N] from the dataset (the model outputs one value each)"
    return "make the model's output and the dataset's target the same shape"


def _shape(value: Any) -> str:
    return str(list(value.shape)) if isinstance(value, torch.Tensor) else type(value).__name__


class BasicTaskWrapper(L.LightningModule):
    """Trains any nn.Module as it is: the model is injected, never subclassed.

    Logs `train/loss` (epoch mean), `val/loss`, `val/<metric>`, `test/loss`, `test/<metric>`.
    Losses and metrics are accumulated over the epoch and logged once at its end (a per-step
    `self.log` costs more than a small model's step); val and test never share a metric object.
    `optimizer` is a factory taking the parameters, e.g. `partial(torch.optim.AdamW, lr=1e-3)`.
    `lr_scheduler` is a factory taking the optimizer, or a dict in Lightning's
    `lr_scheduler_config` form whose "scheduler" is such a factory (with "interval", "monitor").

    Batches: `split_batch` turns a batch into (model inputs, target); the default takes `(x, y)`,
    `(x, y, *extra)` and dicts with a `labels`/`target` key (see `split_batch` above).
    Shapes: outputs and targets must have the same shape, except class scores `[N, C]` against
    class indices `[N]`. `squeeze_output=True` turns a model's `[N, 1]` into `[N]` for scalar
    targets. The first batch of a fit (its first val batch, which Lightning's sanity check
    runs first, or its first training batch), and of a test, is checked against the loss and
    the metrics before any weight changes; a mismatch stops the job with one line (ShapeError).
    """

    def __init__(
        self,
        *,
        model: nn.Module,
        loss_function: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        optimizer: OptimizerArg,
        lr_scheduler: Callable | Mapping[str, Any] | None = None,
        val_metrics: MetricsArg = None,
        test_metrics: MetricsArg = None,
        split_batch: Callable[[Any], tuple[tuple | dict, Any]] = split_batch,
        squeeze_output: bool = False,
    ) -> None:
        super().__init__()
        self.model = model
        self.split_batch = split_batch
        self.squeeze_output = squeeze_output
        self.loss_function = loss_function
        self.optimizer = optimizer
        self.lr_scheduler = lr_scheduler
        # clone() gives each stage its own state, even when one object was passed for both.
        self.val_metrics = _collection(val_metrics, "val/")
        self.test_metrics = _collection(test_metrics, "test/")
        self._loss_means = {stage: EpochMean() for stage in ("train", "val", "test")}
        self._shapes_checked = {stage: False for stage in ("train", "val", "test")}

    def logged_metric_names(self) -> list[str]:
        """What a fit logs, so that a monitor (best checkpoint, early stopping, a plateau
        scheduler) naming anything else is refused before training. A subclass that logs more
        adds its names here."""
        names = ["train/loss", "val/loss"]
        if self.val_metrics is not None:
            names += list(self.val_metrics.keys(keep_base=False))
        return names

    def forward(self, *inputs: Any, **named: Any) -> torch.Tensor:
        output = self.model(*inputs, **named)
        if self.squeeze_output and output.dim() > 1 and output.shape[-1] == 1:
            output = output.squeeze(-1)
        return output

    def _outputs(self, batch: Any) -> tuple[torch.Tensor, Any]:
        inputs, target = self.split_batch(batch)
        output = self(**inputs) if isinstance(inputs, dict) else self(*inputs)
        return output, target

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        output, y = self._outputs(batch)
        loss = self.loss_function(output, y)
        self._loss_means["train"].update(loss, len(y))
        return loss

    def _evaluate(self, batch: Any, stage: str, metrics: MetricCollection | None) -> torch.Tensor:
        output, y = self._outputs(batch)
        loss = self.loss_function(output, y)
        self._loss_means[stage].update(loss, len(y))
        if metrics is not None:
            metrics.update(output, y)
        return loss

    # -- the shape check ---------------------------------------------------------------------
    # On the first batch of whichever loop comes first: Lightning's sanity check runs val
    # batches before the first training step, and a metric refusing the shapes there would
    # end in a traceback instead of the one line.
    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        if self.global_step == 0 and batch_idx == 0:
            self.check_shapes(batch)

    def on_validation_batch_start(self, batch: Any, batch_idx: int, dataloader_idx: int = 0):
        if not self._shapes_checked["val"]:
            self.check_shapes(batch, "val")

    def on_test_batch_start(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        if not self._shapes_checked["test"]:
            self.check_shapes(batch, "test")

    def check_shapes(self, batch: Any, stage: str = "train") -> None:
        """Raise ShapeError unless outputs, targets, the loss and the stage's metrics (val's
        for training) fit together on `batch` (one forward pass in eval mode without
        gradients, so that no state changes: batch-norm statistics, a stateful loss and
        metric states are left untouched)."""
        metrics = self.test_metrics if stage == "test" else self.val_metrics
        if metrics is None:  # a wrapper with test metrics alone: check them in the fit too
            metrics = self.val_metrics if self.val_metrics is not None else self.test_metrics
        training = self.training
        self.eval()
        try:
            self._check_shapes(batch, metrics)
        finally:
            self.train(training)
        self._shapes_checked[stage] = True

    def _check_shapes(self, batch: Any, metrics: MetricCollection | None) -> None:
        with torch.no_grad():
            output, target = self._outputs(batch)
            where = f"outputs {_shape(output)}, targets {_shape(target)}"
            if target is None:
                raise ShapeError(f"The batch has no target ({where}); {_SPLIT_HINT}")
            if not isinstance(output, torch.Tensor) or not isinstance(target, torch.Tensor):
                raise ShapeError(f"Expected tensors, got {where}; {_SPLIT_HINT}")
            if len(output) != len(target):
                raise ShapeError(f"Batch sizes differ: {where}; {_SPLIT_HINT}")
            class_indices = not target.is_floating_point() and output.dim() == target.dim() + 1
            if output.shape != target.shape and not class_indices:
                raise ShapeError(f"{where} differ; {_shape_hint(output, target)}")
            try:
                self.loss_function(output, target)
            except Exception as exc:
                raise ShapeError(f"The loss refuses {where}: {one_line(exc)}") from None
            if metrics is not None:
                try:
                    metrics.clone().update(output, target)
                except Exception as exc:
                    raise ShapeError(f"A metric refuses {where}: {one_line(exc)}") from None

    def _log_epoch(self, stage: str, metrics: MetricCollection | None) -> None:
        """Log the epoch's mean loss and computed metrics as `<stage>/...`, then reset them."""
        loss = self._loss_means[stage].pop(self._sum_over_ranks())
        if loss is not None:
            self.log(f"{stage}/loss", loss, prog_bar=True)
        if metrics is not None and loss is not None:
            self.log_dict(metrics.compute(), prog_bar=True)
        if metrics is not None:
            metrics.reset()

    def _sum_over_ranks(self) -> SumOverRanks | None:
        """Under DDP, a sum over the ranks (each logs the mean of all samples); else None."""
        trainer = self.trainer
        if trainer.world_size == 1:
            return None
        return lambda tensor: trainer.strategy.reduce(tensor, reduce_op="sum")

    def validation_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self._evaluate(batch, "val", self.val_metrics)

    def test_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self._evaluate(batch, "test", self.test_metrics)

    def on_train_epoch_start(self) -> None:
        self._loss_means["train"].pop()  # nothing left over from an interrupted epoch

    # A checkpoint taken part way through an epoch keeps the epoch's running loss, so that a fit
    # resumed there logs the mean over all of the epoch's batches, as an uninterrupted one does.
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["train_loss_mean"] = self._loss_means["train"].state()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self._loss_means["train"].load(checkpoint.get("train_loss_mean") or {})

    def on_train_epoch_end(self) -> None:
        self._log_epoch("train", None)

    def on_validation_epoch_end(self) -> None:
        self._log_epoch("val", self.val_metrics)

    def on_test_epoch_end(self) -> None:
        self._log_epoch("test", self.test_metrics)

    def predict_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> torch.Tensor:
        output, _ = self._outputs(batch)
        return output

    def configure_optimizers(self) -> Any:
        if isinstance(self.optimizer, torch.optim.Optimizer):
            optimizer = self.optimizer
        else:
            optimizer = self.optimizer(self.parameters())
        if self.lr_scheduler is None:
            return optimizer
        if isinstance(self.lr_scheduler, Mapping):
            config = dict(self.lr_scheduler)
            config["scheduler"] = config["scheduler"](optimizer)
        else:
            config = {"scheduler": self.lr_scheduler(optimizer)}
        return {"optimizer": optimizer, "lr_scheduler": config}
