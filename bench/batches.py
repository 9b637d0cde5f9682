"""The data fetch of variants (a) and (b) of bench/step_overhead.py, written in plain PyTorch.

The template's data wrapper serves a TensorDataset a batch at a time (`TensorBatches` in
wrappers/data_wrappers.py): the DataLoader hands a batch's indices to `__getitems__`, which
indexes each tensor once with `index_select`. Here is the same fetch as a person writes it,
so that the three variants differ in their training loop and not in how their batches are
made. bench/data_path.py measures this loader beside the wrapper's.
"""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset


class WholeBatches(Dataset):
    """In-memory tensors fetched one batch at a time: one `index_select` per tensor."""

    def __init__(self, data: TensorDataset) -> None:
        self.tensors = data.tensors

    def __len__(self) -> int:
        return len(self.tensors[0])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        return tuple(t[index] for t in self.tensors)

    def __getitems__(self, indices: list[int]) -> list[torch.Tensor]:
        index = torch.as_tensor(indices, dtype=torch.long)
        return [t.index_select(0, index) for t in self.tensors]  # (B, ...) each


def _whole(batch: list[torch.Tensor]) -> list[torch.Tensor]:
    return batch  # `__getitems__` made the batch; nothing to collate


def batch_loader(data: TensorDataset, batch_size: int, shuffle: bool) -> DataLoader:
    """A DataLoader over `data` in the main process that fetches whole batches."""
    return DataLoader(WholeBatches(data), batch_size=batch_size, shuffle=shuffle, collate_fn=_whole)
