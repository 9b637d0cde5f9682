"""Getter for stochastic weight averaging: off until it has a learning rate."""

from lightning.pytorch.callbacks import StochasticWeightAveraging


def get_swa(
    *,
    swa_lrs: float | None = None,  # the lr while averaging; None: no averaging
    swa_epoch_start: int | float = 0.8,  # a fraction of max_epochs (float) or an epoch (int)
    annealing_epochs: int = 10,
) -> StochasticWeightAveraging | None:
    if swa_lrs is None:
        return None
    return StochasticWeightAveraging(
        swa_lrs=swa_lrs, swa_epoch_start=swa_epoch_start, annealing_epochs=annealing_epochs
    )
