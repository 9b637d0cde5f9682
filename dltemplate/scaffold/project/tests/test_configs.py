"""Every root config under configs/ builds its three parts for each job, and one training
batch goes through its model, loss and metrics. A config whose data is not there yet (a dataset
to link into data/) is skipped with the line that says so."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from dltemplate.config.build import build_run
from dltemplate.config.loader import ROOT_GETTER
from dltemplate.errors import MissingDataError

PROJECT = Path(__file__).resolve().parents[1]
CONFIGS = sorted(p for p in (PROJECT / "configs").glob("*.py") if ROOT_GETTER in p.read_text())


@pytest.mark.parametrize(
    "config",
    CONFIGS or [pytest.param(None, marks=pytest.mark.skip("no config under configs/ yet"))],
    ids=lambda config: config.name if config else "none",
)
@pytest.mark.parametrize("job", ["fit", "test", "predict"])
def test_config_builds_and_trains_one_batch(config: Path, job: str) -> None:
    built = build_run(config, job=job, seed=1)
    try:
        built.data_wrapper.setup("fit")
    except MissingDataError as missing:
        pytest.skip(str(missing))
    assert built.hparams["seed"] == 1
    batch = next(iter(built.data_wrapper.train_dataloader()))
    loss = built.task_wrapper.training_step(batch, 0)
    assert loss.dim() == 0 and torch.isfinite(loss), f"{config.name}: loss {loss}"
