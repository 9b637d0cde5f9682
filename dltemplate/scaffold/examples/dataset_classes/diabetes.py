"""scikit-learn's diabetes data: 442 patients, 10 features, a disease-progression score."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch
from torch.utils.data import Dataset

SPLIT_NAMES = ("train", "val", "test")


class DiabetesDataset(Dataset):
    """One split of the diabetes data as (features, target) pairs, standardised.

    features: (10,) float32; target: (1,) float32, so that a batch's targets are (N, 1) like a
    one-output model's predictions (regression's shape convention: targets have the outputs'
    shape). The 442 samples are split train/val/test by a permutation drawn from `split_seed`;
    the features and the target are standardised with the mean and std of the train split
    alone, so no statistic of val or test leaks into training. Metrics on the target (MAE,
    RMSE) are therefore in train standard deviations (one is about 77 points of the original
    score); R2 has no unit. Nothing is downloaded: the data ship with scikit-learn.
    """

    def __init__(
        self,
        *,
        split: Literal["train", "val", "test"],
        val_fraction: float = 0.15,
        test_fraction: float = 0.15,
        split_seed: int = 0,
    ) -> None:
        from sklearn.datasets import load_diabetes

        if split not in SPLIT_NAMES:
            raise ValueError(f"split must be one of {SPLIT_NAMES}, not {split!r}")
        data = load_diabetes(scaled=False)  # raw values: the scaling below uses train only
        features = torch.as_tensor(data.data, dtype=torch.float32)
        target = torch.as_tensor(data.target, dtype=torch.float32).unsqueeze(1)
        n = len(target)
        n_val, n_test = round(n * val_fraction), round(n * test_fraction)
        order = torch.randperm(n, generator=torch.Generator().manual_seed(split_seed))
        parts = dict(
            zip(SPLIT_NAMES, order.split([n - n_val - n_test, n_val, n_test]), strict=True)
        )
        train = parts["train"]
        mean, std = features[train].mean(0), features[train].std(0)
        target_mean, target_std = target[train].mean(0), target[train].std(0)
        rows = parts[split]
        self.rows = rows  # the split's rows of scikit-learn's data, in the split's order
        self.mean, self.std = mean, std
        self.features = (features[rows] - mean) / std
        self.targets = (target[rows] - target_mean) / target_std

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.features[index], self.targets[index]


def read_patients(
    path: Path, *, val_fraction: float = 0.15, test_fraction: float = 0.15, split_seed: int = 0
) -> torch.Tensor:
    """Raw rows of the 10 diabetes features (age, sex, bmi, bp, s1-s6, as scikit-learn's
    `load_diabetes(scaled=False)` gives them), standardised with the train split's mean and std
    into [N, 10] float32. Predictions are in train standard deviations of the score."""
    from dltemplate.jobs.inputs import InputError, load_array

    array = load_array(path)
    if array.ndim != 2 or array.shape[1] != 10:
        raise InputError(
            f"Input {path} has shape {list(array.shape)}; give one patient per row: [N, 10] "
            "raw feature values"
        )
    train = DiabetesDataset(
        split="train", val_fraction=val_fraction, test_fraction=test_fraction, split_seed=split_seed
    )
    return (torch.as_tensor(array, dtype=torch.float32) - train.mean) / train.std
