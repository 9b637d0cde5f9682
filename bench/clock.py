"""The epoch clock of the training benchmarks: a Lightning callback that stamps each training
epoch's start and the end of training, and nothing else.

Variant (c) of bench/step_overhead.py runs the fit job's own function, which builds its
Trainer itself; the clock gets in through the trainer getter's `callbacks` key
(bench/configs/cnn28.py, `trainer.epoch_clock=True`). Each clock made is kept in `MADE`, so
that the benchmark can read the one the fit job's Trainer used.
"""

from __future__ import annotations

import time

import lightning as L

Stamp = tuple[float, float]  # (wall, this process's CPU time)

MADE: list[EpochClock] = []


def stamp(device_type: str) -> Stamp:
    """Now, after the device's queued work (a CUDA step returns before its kernels end)."""
    if device_type == "cuda":
        import torch

        torch.cuda.synchronize()
    return time.perf_counter(), time.process_time()


class EpochClock(L.Callback):
    """Training epoch start times and the end of training."""

    def __init__(self) -> None:
        self.starts: list[Stamp] = []
        self.end: Stamp = (0.0, 0.0)
        MADE.append(self)

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.starts.append(stamp(pl_module.device.type))

    def on_train_end(self, trainer, pl_module) -> None:
        self.end = stamp(pl_module.device.type)
