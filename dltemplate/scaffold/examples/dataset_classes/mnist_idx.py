"""MNIST-format datasets (MNIST, Fashion-MNIST, Oracle-MNIST) read from idx files."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from dltemplate.errors import MissingDataError, UserError

PREFIXES = {"train": "train", "test": "t10k"}
_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: Path) -> np.ndarray:
    """Read an idx file (optionally gzipped) into an array of its declared shape."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _DTYPES:
        raise UserError(f"{path} is not an idx file (bad magic number); re-copy it from its source")
    ndim = data[3]
    shape = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    array = np.frombuffer(data, dtype=_DTYPES[data[2]], offset=4 + 4 * ndim)
    if array.size != int(np.prod(shape)):
        raise UserError(
            f"{path} holds {array.size} values but its header says {shape}; the file is truncated"
        )
    return array.reshape(shape)


def find_idx_file(root: Path, stem: str) -> Path:
    for name in (stem, f"{stem}.gz"):
        if (root / name).is_file():
            return root / name
    raise MissingDataError(
        f"Missing {root / stem}[.gz]: link the dataset folder into data/, e.g. "
        f"`ln -s /absolute/path/to/oracle-mnist {root}` (it must hold {stem} or {stem}.gz)"
    )


class MnistIdxDataset(Dataset):
    """(image, label) pairs from `<root>/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]`.

    image is (1, H, W) float32 in [0, 1]; label is int64.
    """

    def __init__(self, *, root: str | Path, split: Literal["train", "test"] = "train") -> None:
        root = Path(root)
        prefix = PREFIXES[split]
        images = read_idx(find_idx_file(root, f"{prefix}-images-idx3-ubyte"))
        labels = read_idx(find_idx_file(root, f"{prefix}-labels-idx1-ubyte"))
        if len(images) != len(labels):
            raise UserError(
                f"{root}: {len(images)} {split} images but {len(labels)} labels; re-copy the files"
            )
        self.images = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)
        self.labels = torch.from_numpy(labels.astype(np.int64))

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[index], self.labels[index]
