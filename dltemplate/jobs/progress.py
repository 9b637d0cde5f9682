"""Plain, readable progress lines for job logs (rich bars are for terminals)."""

from __future__ import annotations

import time

import lightning as L


class PlainProgress(L.Callback):
    """One line per finished epoch with its time and metrics, e.g.

    `epoch 3/20 step 75 4.1s train/loss=0.412 val/loss=0.301 val/acc=0.912`
    """

    def __init__(self) -> None:
        self._started = 0.0

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._started = time.perf_counter()  # a fit resumed mid-epoch skips the epoch start

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._started = time.perf_counter()

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        self._print_epoch(trainer)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.enable_validation:
            self._print_epoch(trainer)

    def _print_epoch(self, trainer: L.Trainer) -> None:
        metrics = " ".join(
            f"{k}={float(v):.4g}"
            for k, v in sorted(trainer.callback_metrics.items())
            if v.numel() == 1
        )
        seconds = time.perf_counter() - self._started
        print(
            f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs} step {trainer.global_step} "
            f"{seconds:.1f}s {metrics}",
            flush=True,
        )

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        metrics = " ".join(
            f"{k}={float(v):.4g}" for k, v in sorted(trainer.callback_metrics.items())
        )
        print(f"test {metrics}", flush=True)
