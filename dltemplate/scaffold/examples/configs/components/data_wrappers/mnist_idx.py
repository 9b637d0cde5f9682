"""Getter for an MNIST-format dataset (idx files) linked into data/."""

from functools import partial

from dataset_classes.mnist_idx import MnistIdxDataset
from wrappers import BasicDataWrapper


def get_data_wrapper(
    *,
    root: str = "data/oracle-mnist",
    batch_size: int = 128,
    val_fraction: float = 0.1,  # taken from the official train split
    split_seed: int = 0,
    num_workers: int = 2,
) -> BasicDataWrapper:
    return BasicDataWrapper(
        dataset=partial(MnistIdxDataset, root=root, split="train"),
        test_dataset=partial(MnistIdxDataset, root=root, split="test"),
        split_fractions=(1.0 - val_fraction, val_fraction),  # (train, val)
        split_seed=split_seed,
        batch_size=batch_size,
        num_workers=num_workers,
    )
