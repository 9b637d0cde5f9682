"""Getter for a regression task wrapper: MSE loss, AdamW, plateau schedule, MAE/RMSE/R2.

Targets have the model output's shape ([N, 1] for one output, [N, k] for k): no broadcasting.
"""

from torch import nn
from torchmetrics import MeanAbsoluteError, MeanSquaredError, R2Score

from wrappers import BasicTaskWrapper

from .common import adamw_plateau_task


def get_regressor(
    *,
    model: nn.Module,
    lr: float = 1e-3,
    weight_decay: float = 1e-4,
    lr_patience: int = 3,  # epochs without val/loss progress before the lr is halved
) -> BasicTaskWrapper:
    def metrics() -> dict:
        return {
            "mae": MeanAbsoluteError(),
            "rmse": MeanSquaredError(squared=False),
            "r2": R2Score(),  # over all outputs (uniform average) for several outputs
        }

    return adamw_plateau_task(
        model=model,
        loss_function=nn.MSELoss(),
        metrics=metrics,
        lr=lr,
        weight_decay=weight_decay,
        lr_patience=lr_patience,
    )
