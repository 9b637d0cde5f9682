"""Getter for a run's Lightning callbacks, each one at its own override path.

Called from the trainer getter as `"callbacks": get_callbacks(monitor=..., mode=...)`, so its
settings are `trainer.callbacks.<name>.<argument>` (e.g.
`--set trainer.callbacks.early_stopping.patience=5`) and land in hparams.yaml. A callback whose
key setting is None is left out (early stopping without `patience`, SWA without `swa_lrs` ...).
Add your own `lightning.Callback` to the list here or in the trainer getter, unchanged.
"""

from lightning import Callback

from .early_stopping import get_early_stopping
from .grad_norm import get_grad_norm
from .lr_monitor import get_lr_monitor
from .model_summary import get_model_summary
from .swa import get_swa


def get_callbacks(*, monitor: str = "val/loss", mode: str = "min") -> list[Callback]:
    """`monitor`/`mode`: the trainer's metric for the best checkpoint; early stopping watches
    the same one unless told otherwise."""
    callbacks = [
        get_early_stopping(monitor=monitor, mode=mode),
        get_lr_monitor(),
        get_swa(),
        get_grad_norm(),
        get_model_summary(),
    ]
    return [c for c in callbacks if c is not None]
