"""Getter for a plain nn.Sequential MLP: no model class of the template's own."""

from torch import nn


def get_model(*, in_features: int = 10, width: int = 64, out_features: int = 1) -> nn.Sequential:
    """(N, in_features) -> (N, out_features)."""
    return nn.Sequential(nn.Linear(in_features, width), nn.ReLU(), nn.Linear(width, out_features))
