"""BasicTaskWrapper: a LightningModule that owns model, loss, optimizer, scheduler and metrics."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import lightning as L
import torch
from torch import nn
from torchmetrics import Metric, MetricCollection

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

    def pop(self) -> torch.Tensor | None:
        """The mean since the last pop, or None when nothing was added; then starts over."""
        mean = None if self.total is None else self.total / self.count
        self.total, self.count = None, 0
        return mean


def batch_inputs(batch: Any) -> Any:
    """The inputs of a batch: `x` of `(x, y)` or `(x,)`, or the batch itself."""
    return batch[0] if isinstance(batch, list | tuple) else batch


class BasicTaskWrapper(L.LightningModule):
    """Trains any nn.Module as it is: the model is injected, never subclassed.

    Logs `train/loss` (epoch mean), `val/loss`, `val/<metric>`, `test/loss`, `test/<metric>`.
    Losses and metrics are accumulated over the epoch and logged once at its end (a per-step
    `self.log` costs more than a small model's step); val and test never share a metric object.
    `optimizer` is a factory taking the parameters, e.g. `partial(torch.optim.AdamW, lr=1e-3)`.
    `lr_scheduler` is a factory taking the optimizer, or a dict in Lightning's
    `lr_scheduler_config` form whose "scheduler" is such a factory (with "interval", "monitor").
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
    ) -> None:
        super().__init__()
        self.model = model
        self.loss_function = loss_function
        self.optimizer = optimizer
        self.lr_scheduler = lr_scheduler
        # clone() gives each stage its own state, even when one object was passed for both.
        self.val_metrics = _collection(val_metrics, "val/")
        self.test_metrics = _collection(test_metrics, "test/")
        self._loss_means = {stage: EpochMean() for stage in ("train", "val", "test")}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = self.loss_function(self(x), y)
        self._loss_means["train"].update(loss, len(y))
        return loss

    def _evaluate(self, batch: Any, stage: str, metrics: MetricCollection | None) -> torch.Tensor:
        x, y = batch
        output = self(x)
        loss = self.loss_function(output, y)
        self._loss_means[stage].update(loss, len(y))
        if metrics is not None:
            metrics.update(output, y)
        return loss

    def _log_epoch(self, stage: str, metrics: MetricCollection | None) -> None:
        """Log the epoch's mean loss and computed metrics as `<stage>/...`, then reset them."""
        loss = self._loss_means[stage].pop()
        if loss is not None:
            self.log(f"{stage}/loss", loss, prog_bar=True)
        if metrics is not None and loss is not None:
            self.log_dict(metrics.compute(), prog_bar=True)
        if metrics is not None:
            metrics.reset()

    def validation_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self._evaluate(batch, "val", self.val_metrics)

    def test_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self._evaluate(batch, "test", self.test_metrics)

    def on_train_epoch_start(self) -> None:
        self._loss_means["train"].pop()  # nothing left over from an interrupted epoch

    def on_train_epoch_end(self) -> None:
        self._log_epoch("train", None)

    def on_validation_epoch_end(self) -> None:
        self._log_epoch("val", self.val_metrics)

    def on_test_epoch_end(self) -> None:
        self._log_epoch("test", self.test_metrics)

    def predict_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> torch.Tensor:
        return self(batch_inputs(batch))

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
