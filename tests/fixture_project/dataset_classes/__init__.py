"""Dataset classes: plain torch Datasets (named so as not to shadow HuggingFace's `datasets`)."""

from dataset_classes.diabetes import DiabetesDataset
from dataset_classes.digits import DigitsDataset
from dataset_classes.mnist_idx import MnistIdxDataset

__all__ = ["DiabetesDataset", "DigitsDataset", "MnistIdxDataset"]
