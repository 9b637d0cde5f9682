"""Getter for a classification task wrapper: cross-entropy, AdamW, plateau schedule, accuracy."""

from torch import nn
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

from wrappers import BasicTaskWrapper

from .common import adamw_plateau_task


def get_classifier(
    *,
    model: nn.Module,
    num_classes: int = 10,
    lr: float = 1e-3,
    weight_decay: float = 1e-4,
    label_smoothing: float = 0.0,
    lr_patience: int = 3,  # epochs without val/loss progress before the lr is halved
) -> BasicTaskWrapper:
    def metrics() -> dict:
        return {
            "acc": MulticlassAccuracy(num_classes=num_classes, average="micro"),
            "f1": MulticlassF1Score(num_classes=num_classes, average="macro"),
        }

    return adamw_plateau_task(
        model=model,
        loss_function=nn.CrossEntropyLoss(label_smoothing=label_smoothing),
        metrics=metrics,
        lr=lr,
        weight_decay=weight_decay,
        lr_patience=lr_patience,
    )
