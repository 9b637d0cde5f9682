"""What the shipped task-wrapper getters share: AdamW and a plateau schedule on val/loss.

Not a getter (no `get_` prefix): the getters that call it own the hyperparameters.
"""

from collections.abc import Callable
from functools import partial

import torch
from torch import nn

from wrappers import BasicTaskWrapper


def adamw_plateau_task(
    *,
    model: nn.Module,
    loss_function: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    metrics: Callable[[], dict],  # called twice: val and test get their own metric objects
    lr: float,
    weight_decay: float,
    lr_patience: int,
) -> BasicTaskWrapper:
    """A BasicTaskWrapper trained with AdamW; the lr is halved after `lr_patience` epochs
    without val/loss progress."""
    return BasicTaskWrapper(
        model=model,
        loss_function=loss_function,
        optimizer=partial(torch.optim.AdamW, lr=lr, weight_decay=weight_decay),
        lr_scheduler={
            "scheduler": partial(
                torch.optim.lr_scheduler.ReduceLROnPlateau, factor=0.5, patience=lr_patience
            ),
            "monitor": "val/loss",
            "interval": "epoch",
        },
        val_metrics=metrics(),
        test_metrics=metrics(),
    )
