"""Getter for the MLP example model."""

from models.mlp import MLP


def get_model(
    *,
    in_features: int = 64,  # 8x8 digits
    num_classes: int = 10,
    hidden_dim: int = 128,
    num_layers: int = 2,
    dropout: float = 0.1,
) -> MLP:
    return MLP(
        in_features=in_features,
        num_classes=num_classes,
        hidden_dim=hidden_dim,
        num_layers=num_layers,
        dropout=dropout,
    )
