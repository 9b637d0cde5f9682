"""Getter for early stopping: off until it has a `patience`."""

from lightning.pytorch.callbacks import EarlyStopping


def get_early_stopping(
    *,
    monitor: str = "val/loss",
    mode: str = "min",  # "min" or "max"; the job refuses one that contradicts the metric's name
    patience: int | None = None,  # validation checks without improvement; None: no early stop
    min_delta: float = 0.0,  # the smallest change that counts as an improvement
) -> EarlyStopping | None:
    if patience is None:
        return None
    return EarlyStopping(monitor=monitor, mode=mode, patience=patience, min_delta=min_delta)
