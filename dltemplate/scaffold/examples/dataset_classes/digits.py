"""scikit-learn's handwritten digits: 1,797 8x8 images of 0-9, shipped inside scikit-learn."""

from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import Dataset


class DigitsDataset(Dataset):
    """All 1,797 digits as (image, label): image (1, 8, 8) float32 in [0, 1], label int64.

    Nothing is downloaded: the data lie in scikit-learn's package folder. Split it with the data
    wrapper's `split_fractions` and `split_seed`.
    """

    def __init__(self) -> None:
        from sklearn.datasets import load_digits

        digits = load_digits()
        self.images = torch.as_tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
        self.labels = torch.as_tensor(digits.target, dtype=torch.int64)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[index], self.labels[index]


def read_digit_images(path: Path) -> torch.Tensor:
    """Raw 8x8 images, pixel values 0-16 as scikit-learn's digits hold them (one image per row
    of 64 values, or [N, 8, 8]), divided by 16 into [N, 1, 8, 8] float32."""
    from dltemplate.jobs.inputs import InputError, load_array

    array = load_array(path)
    if array.size % 64 or array.ndim < 2 or len(array) * 64 != array.size:
        raise InputError(
            f"Input {path} has shape {list(array.shape)}; give one 8x8 digit per row: "
            "[N, 64] or [N, 8, 8] pixel values 0-16"
        )
    return torch.as_tensor(array, dtype=torch.float32).reshape(-1, 1, 8, 8) / 16.0
