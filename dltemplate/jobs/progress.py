"""Plain, readable progress lines for job logs (rich bars are for terminals)."""

from __future__ import annotations

import time

import lightning as L


class PlainProgress(L.Callback):
    """One line per finished epoch with its time and metrics, e.g.

    `epoch 3/20 step 75 4.1s train/loss=0.412 val/loss=0.301 val/acc=0.912`

    The line is printed once the epoch's metrics are all logged: the task wrapper logs its
    train metrics in its own `on_train_epoch_end`, which runs after this callback's, so the
    line of epoch N comes when epoch N + 1 starts, when training ends, or when it stops.
    Under DDP, rank 0 prints (every rank's figures are the same, reduced over all of them).
    """

    def __init__(self) -> None:
        self._started = 0.0
        self._finished: tuple[int, int, float] | None = None  # (epoch, step, seconds)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._started = time.perf_counter()  # a fit resumed mid-epoch skips the epoch start

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._print_finished(trainer)
        self._started = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        seconds = time.perf_counter() - self._started
        self._finished = (trainer.current_epoch, trainer.global_step, seconds)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._print_finished(trainer)

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        self._print_finished(trainer)

    def _print_finished(self, trainer: L.Trainer) -> None:
        if self._finished is None or not trainer.is_global_zero:
            return
        epoch, step, seconds = self._finished
        self._finished = None
        metrics = " ".join(
            f"{k}={float(v):.4g}"
            for k, v in sorted(trainer.callback_metrics.items())
            if v.numel() == 1
        )
        print(
            f"epoch {epoch + 1}/{trainer.max_epochs} step {step} {seconds:.1f}s {metrics}",
            flush=True,
        )

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        metrics = " ".join(
            f"{k}={float(v):.4g}" for k, v in sorted(trainer.callback_metrics.items())
        )
        print(f"test {metrics}", flush=True)
