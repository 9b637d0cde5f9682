"""Getter for the learning-rate monitor: logs each optimizer's lr to every tracker of the run."""

from typing import Literal

from lightning.pytorch.callbacks import LearningRateMonitor


def get_lr_monitor(
    *,
    logging_interval: Literal["step", "epoch"] | None = None,  # None: the lr is not logged
) -> LearningRateMonitor | None:
    if logging_interval is None:
        return None
    return LearningRateMonitor(logging_interval=logging_interval)
