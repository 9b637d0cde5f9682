"""Getter for scikit-learn's digits, split train/val/test with a fixed seed."""

from dataset_classes.digits import DigitsDataset, read_digit_images
from wrappers import BasicDataWrapper


def get_data_wrapper(
    *,
    batch_size: int = 64,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    split_seed: int = 0,  # fixed so that every run and job sees the same split
    folds: int = 1,  # k-fold cross-validation over train + val (a sweep's or search's `folds:`)
    fold: int = 0,  # the fold that is the val split, 0..folds-1
) -> BasicDataWrapper:
    return BasicDataWrapper(
        dataset=DigitsDataset,  # built in setup(), not when the getter runs
        split_fractions=(1.0 - val_fraction - test_fraction, val_fraction, test_fraction),
        split_seed=split_seed,
        batch_size=batch_size,
        num_workers=0,  # 1,797 tensors in memory: worker processes cost more than they save
        input_reader=read_digit_images,  # main.py predict --input: raw 0-16 pixel rows
        folds=folds,
        fold=fold,
    )
