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


def batch_inputs(batch: Any) -> Any:
    """The inputs of a batch: `x` of `(x, y)` or `(x,)`, or the batch itself."""
    return batch[0] if isinstance(batch, list | tuple) else batch


class BasicTaskWrapper(L.LightningModule):
    """Trains any nn.Module as it is: the model is injected, never subclassed.

    Logs `train/loss` (epoch mean), `val/loss`, `val/<metric>`, `test/loss`, `test/<metric>`.
    Metrics are accumulated over the epoch; val and test never share a metric object.
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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = self.loss_function(self(x), y)
        self.log("train/loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(y))
        return loss

    def _evaluate(self, batch: Any, stage: str, metrics: MetricCollection | None) -> torch.Tensor:
        x, y = batch
        output = self(x)
        loss = self.loss_function(output, y)
        self.log(
            f"{stage}/loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(y)
        )
        if metrics is not None:
            metrics.update(output, y)
            self.log_dict(metrics, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(y))
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self._evaluate(batch, "val", self.val_metrics)

    def test_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self._evaluate(batch, "test", self.test_metrics)

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
