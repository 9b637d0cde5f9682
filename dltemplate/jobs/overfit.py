"""Can the model fit a few batches? The verdict of `main.py debug --mode overfit`.

A model, loss and optimizer that work drive the training loss on a handful of batches, seen
again and again, close to zero. One that cannot (a wrong loss, a detached output, targets it
cannot express, a learning rate of nothing) leaves it where it started.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import lightning as L

# The model fits once the epoch's mean training loss falls to 1% of the first epoch's: the
# example configs get there in 100 to 200 epochs of two batches.
FIT_RATIO = 0.01


class OverfitMonitor(L.Callback):
    """Keeps each epoch's mean training loss (over its batches), turns the LR schedule off, and
    stops the fit once the loss has fallen to `ratio` of the first epoch's."""

    def __init__(self, ratio: float = FIT_RATIO) -> None:
        self.ratio = ratio
        self.losses: list[float] = []
        self._epoch: list[float] = []

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # A schedule on val/loss (unseen data) would halve the lr while the model memorises.
        trainer.strategy.lr_scheduler_configs = []

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._epoch = []

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch, batch_idx
    ) -> None:
        loss = outputs.get("loss") if isinstance(outputs, Mapping) else outputs
        if loss is not None:
            self._epoch.append(float(loss))

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self._epoch:
            return
        self.losses.append(sum(self._epoch) / len(self._epoch))
        if self.fits:
            trainer.should_stop = True

    @property
    def fits(self) -> bool:
        return len(self.losses) >= 2 and self.losses[-1] <= self.ratio * self.losses[0]

    def verdict(self, batches: int) -> dict[str, Any]:
        """The losses, whether the model fit, and the line that says so."""
        if not self.losses:
            message = "overfit: no training batch ran; check the train split and overfit_batches"
            return {"fits": False, "epochs": 0, "losses": [], "message": message}
        first, last, epochs = self.losses[0], self.losses[-1], len(self.losses)
        change = f"overfit: train loss {first:.3g} -> {last:.3g} in {epochs} epochs"
        if self.fits:
            message = f"{change}: the model can fit a few batches ({batches})"
        else:
            message = (
                f"{change}, not down to {self.ratio:.0%} of the start: the model did not fit "
                f"{batches} batch(es); check the loss, the model's output and the learning rate "
                "(main.py lr-find), or give it more --epochs"
            )
        return {"fits": self.fits, "epochs": epochs, "losses": self.losses, "message": message}
