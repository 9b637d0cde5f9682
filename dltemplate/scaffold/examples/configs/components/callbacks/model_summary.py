"""Getter for the model summary printed when a fit starts."""

from lightning.pytorch.callbacks import ModelSummary


def get_model_summary(*, max_depth: int = 1) -> ModelSummary:
    """`max_depth`: how deep into nested modules the table goes; 0 prints none."""
    return ModelSummary(max_depth=max_depth)
