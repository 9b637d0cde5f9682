"""Example nn.Modules. Plain PyTorch: nothing here knows about Lightning or the template."""

from models.mlp import MLP
from models.small_cnn import SmallCNN

__all__ = ["MLP", "SmallCNN"]
