"""Trainer settings that Lightning refuses at the start of a fit (docs/errors.md): one line
naming the setting, before the fit writes its records (hparams.yaml, the archived config)."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from torch.utils.data import TensorDataset

from dltemplate.errors import UserError
from dltemplate.jobs.trainer import check_batch_limits, lightning_refusals
from dltemplate.layout import RunLayout
from tests.conftest import Project
from wrappers import BasicDataWrapper, BasicTaskWrapper

TOO_FEW_VAL_BATCHES = """\
description: P
experiments:
  exp:
    description: E
    runs:
      r: {description: R, config: configs/digits_mlp.py, jobs: [fit],
          overrides: {trainer.max_epochs: 1, trainer.limit_val_batches: 0.1}}
"""


def data() -> BasicDataWrapper:
    """80 train and 20 val samples in batches of 10: 8 and 2 batches."""

    def samples(n: int) -> TensorDataset:
        return TensorDataset(torch.randn(n, 3), torch.randn(n, 1))

    return BasicDataWrapper(train_dataset=samples(80), val_dataset=samples(20), batch_size=10)


def trainer(**settings) -> L.Trainer:
    return L.Trainer(logger=False, enable_checkpointing=False, accelerator="cpu", **settings)


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"limit_val_batches": 0.4}, "trainer.limit_val_batches=0.4 leaves no val batch: the "
         "val split has 2 batches, and 0.4 x 2 < 1; set it to at least 0.5"),
        ({"limit_train_batches": 0.1}, "trainer.limit_train_batches=0.1 leaves no train batch"),
        ({"val_check_interval": 9}, "trainer.val_check_interval=9 is more batches than an "
         "epoch has (8)"),
        ({"val_check_interval": 5, "limit_train_batches": 4}, "is more batches than an epoch "
         "has (4)"),
    ],
)  # fmt: skip
def test_batch_settings_lightning_would_refuse_are_one_line(settings, message) -> None:
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_batch_limits(trainer(**settings), data())


@pytest.mark.parametrize(
    "settings",
    [{}, {"limit_val_batches": 0.5}, {"val_check_interval": 8}, {"limit_val_batches": 0.0}],
)
def test_batch_settings_lightning_takes_pass(settings) -> None:
    check_batch_limits(trainer(**settings), data())


def test_a_fit_with_too_few_val_batches_stops_before_its_records(project: Project) -> None:
    project.write("configs/projects/tiny.yaml", TOO_FEW_VAL_BATCHES)
    run = RunLayout.of("tiny", "exp", "r")
    result = project.snakemake("--cores", "1", run.done("fit"), check=False, timeout=300)
    assert result.returncode != 0
    log = project.path(run.log("fit")).read_text()
    assert (
        log.strip()
        .splitlines()[-1]
        .startswith(
            "Error: trainer.limit_val_batches=0.1 leaves no val batch: the val split has 5 batches"
        )
    )
    assert "Traceback" not in log and "Fit stopped inside a batch" not in log
    for written in (run.hparams, run.done("fit"), *run.archives):
        assert not project.path(written).exists(), written


def test_a_setting_lightning_refuses_in_a_test_is_one_line() -> None:
    wrapper = BasicTaskWrapper(
        model=torch.nn.Linear(3, 1),
        loss_function=torch.nn.MSELoss(),
        optimizer=lambda params: torch.optim.SGD(params, lr=0.1),
    )
    data_wrapper = data()
    data_wrapper.setup("fit")
    refused = (
        r"^Lightning refuses the run's trainer settings at the start of the test: "
        r"MisconfigurationException: You requested to check 0.4 of the `test_dataloader`"
    )
    with pytest.raises(UserError, match=refused), lightning_refusals("test"):
        trainer(limit_test_batches=0.4).test(wrapper, data_wrapper.val_dataloader())
