"""A metric that refuses the shapes stops the fit in one line before any validation step
(Lightning's sanity check runs val batches before the first training step), and a test before
its first step (docs/errors.md)."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from torchmetrics import R2Score

from dltemplate.errors import ShapeError
from wrappers import BasicTaskWrapper


class CountingWrapper(BasicTaskWrapper):
    """Counts the steps that ran, to show that none did."""

    steps = 0

    def training_step(self, batch, batch_idx):
        self.steps += 1
        return super().training_step(batch, batch_idx)

    def validation_step(self, batch, batch_idx):
        self.steps += 1
        return super().validation_step(batch, batch_idx)

    def test_step(self, batch, batch_idx):
        self.steps += 1
        return super().test_step(batch, batch_idx)


def classifier_with_a_regression_metric(stage: str) -> CountingWrapper:
    return CountingWrapper(
        model=nn.Linear(10, 3),
        loss_function=nn.CrossEntropyLoss(),
        optimizer=lambda params: torch.optim.SGD(params, lr=0.01),
        **{f"{stage}_metrics": {"r2": R2Score()}},  # a regression metric on class scores
    )


def loader() -> DataLoader:
    return DataLoader(TensorDataset(torch.randn(64, 10), torch.randint(0, 3, (64,))), 32)


def trainer() -> L.Trainer:
    return L.Trainer(
        max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, accelerator="cpu", num_sanity_val_steps=2,
    )  # fmt: skip


def test_the_shape_check_runs_before_the_sanity_check(tmp_path) -> None:
    wrapper = classifier_with_a_regression_metric("val")
    with pytest.raises(ShapeError, match=r"A metric refuses outputs \[32, 3\], targets \[32\]"):
        trainer().fit(wrapper, loader(), loader())
    assert wrapper.steps == 0


def test_the_shape_check_runs_before_the_first_test_step() -> None:
    wrapper = classifier_with_a_regression_metric("test")
    with pytest.raises(ShapeError, match=r"A metric refuses outputs \[32, 3\], targets \[32\]"):
        trainer().test(wrapper, loader())
    assert wrapper.steps == 0
