"""Getter for scikit-learn's diabetes data (regression), split train/val/test with a fixed seed.

Each split is its own DiabetesDataset, standardised with the train split's statistics.
Batches are (features [N, 10], targets [N, 1]).
"""

from functools import partial

from dataset_classes.diabetes import DiabetesDataset, read_patients
from wrappers import BasicDataWrapper


def get_data_wrapper(
    *,
    batch_size: int = 32,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    split_seed: int = 0,  # fixed so that every run and job sees the same split
) -> BasicDataWrapper:
    split = partial(
        DiabetesDataset,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        split_seed=split_seed,
    )
    return BasicDataWrapper(  # factories: built in setup(), not when the getter runs
        train_dataset=partial(split, split="train"),
        val_dataset=partial(split, split="val"),
        test_dataset=partial(split, split="test"),
        batch_size=batch_size,
        num_workers=0,  # 442 rows in memory: worker processes cost more than they save
        input_reader=partial(  # main.py predict --input: raw feature rows
            read_patients,
            val_fraction=val_fraction,
            test_fraction=test_fraction,
            split_seed=split_seed,
        ),
    )
