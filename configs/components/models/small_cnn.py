"""Getter for the small CNN example model."""

from models.small_cnn import SmallCNN


def get_model(
    *,
    in_channels: int = 1,
    num_classes: int = 10,
    channels: int = 32,
    dropout: float = 0.1,
) -> SmallCNN:
    return SmallCNN(
        in_channels=in_channels, num_classes=num_classes, channels=channels, dropout=dropout
    )
