"""Seeds and reproduction: the same config and seed give the same run, a run's archived config
reproduces it, and a broken config stops its job with one line and no .done file."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
import yaml

from dltemplate.config.build import build_run
from tests.conftest import REPO, Project, make_project

NOISE_CONFIG = """\
import random

import numpy as np
import torch
from lightning import LightningModule
from torch.utils.data import Dataset

from dltemplate import RootConfig
from wrappers import BasicDataWrapper


class Noise(Dataset):
    # Random draws inside the DataLoader workers, from all three generators.
    def __len__(self):
        return 8

    def __getitem__(self, index):
        return torch.tensor([np.random.rand(), random.random(), torch.rand(()).item()])


class Echo(LightningModule):
    def __init__(self):
        super().__init__()
        self.unused = torch.nn.Parameter(torch.zeros(1))

    def predict_step(self, batch, batch_idx):
        return batch


def get_echo() -> Echo:
    return Echo()


def get_data(*, num_workers: int = 2) -> BasicDataWrapper:
    return BasicDataWrapper(predict_dataset=Noise(), batch_size=2, num_workers=num_workers)


def get_trainer() -> dict:
    return {"accelerator": "cpu", "deterministic": True}


def get_root_config_instance() -> RootConfig:
    return RootConfig(task_wrapper=get_echo, data_wrapper=get_data, trainer=get_trainer)
"""


@pytest.mark.slow
def test_dataloader_workers_are_seeded(tmp_path: Path) -> None:
    import lightning as L

    path = tmp_path / "noise.py"
    path.write_text(NOISE_CONFIG)

    def draws(seed: int) -> torch.Tensor:
        built = build_run(path, job="predict", seed=seed)
        built.data_wrapper.set_threads(3)  # two workers
        trainer = L.Trainer(
            **built.trainer_kwargs,
            logger=False,
            enable_progress_bar=False,
            enable_model_summary=False,
        )
        return torch.cat(trainer.predict(built.task_wrapper, datamodule=built.data_wrapper))

    first, again, other = draws(1), draws(1), draws(2)
    assert torch.equal(first, again)
    assert not torch.equal(first, other)
    # Each worker has its own NumPy and Python streams (forked workers would otherwise
    # repeat the parent's): no value drawn twice.
    for column in range(3):
        assert len(set(first[:, column].tolist())) == 8


@pytest.fixture
def torch_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.mark.slow
def test_same_seed_same_test_metrics_other_seed_others(tmp_path: Path, torch_threads) -> None:
    """The fit and test jobs, in this process: twice with seed 42, once with a `seed` override."""
    from dltemplate.jobs.evaluate import test_run
    from dltemplate.jobs.fit import fit_run

    def fit_and_test(name: str, **extra) -> dict:
        run_dir = tmp_path / name
        overrides = {"trainer.max_epochs": 2, "task_wrapper.model.hidden_dim": 16, **extra}
        job = {"run_dir": run_dir, "config_file": str(REPO / "configs/digits_mlp.py")}
        fit = fit_run(
            **job, overrides=overrides, seed=42, threads=1, done_file=run_dir / "fit.done"
        )
        test_run(
            **job,
            overrides=overrides,
            seed=42,
            threads=1,
            fit_done=run_dir / "fit.done",
            done_file=run_dir / "test.done",
        )
        assert fit["seed"] == yaml.safe_load((run_dir / "hparams.yaml").read_text())["seed"]
        return json.loads((run_dir / "test.done").read_text())["metrics"]

    first = fit_and_test("first")
    assert fit_and_test("again") == first
    other = fit_and_test("other", seed=7)
    assert other["test/loss"] != first["test/loss"]
    assert yaml.safe_load((tmp_path / "other/hparams.yaml").read_text())["seed"] == 7


REGISTRY = """\
description: Reproducibility checks
experiments:
  exp:
    description: A run, a rerun from its archive, a broken config
    runs:
      a:
        description: the reference run
        config: configs/digits_mlp.py
        jobs: [fit, test]
        overrides: {trainer.max_epochs: 2, task_wrapper.model.hidden_dim: 32}
      from_archive:
        description: run a again from its archived config alone (it carries a's overrides)
        config: results/tiny/exp/a/archived_config.py
        jobs: [fit, test]
      broken:
        description: a getter that raises
        config: configs/broken.py
        jobs: [fit]
"""
BROKEN = """\
from dltemplate import RootConfig

from .components.data_wrappers.digits import get_data_wrapper
from .components.trainers.default import get_trainer


def get_task_wrapper(*, lr: float = 0.1) -> None:
    raise ValueError(f"lr {lr} is too large for this model")


def get_root_config_instance() -> RootConfig:
    return RootConfig(
        task_wrapper=get_task_wrapper, data_wrapper=get_data_wrapper, trainer=get_trainer
    )
"""


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Project, str]:
    """One Snakemake run of the registry for the tests below. from_archive's fit waits for a's,
    which writes its config; one thread per fit, so that a and broken fit side by side."""
    project = make_project(tmp_path_factory.mktemp("reproduce") / "proj", REGISTRY)
    project.write("configs/broken.py", BROKEN)
    result = project.snakemake(
        "--cores",
        "2",
        "--keep-going",
        "results/tiny/exp/broken/fit.done",
        "results/tiny/exp/a/test.done",
        "results/tiny/exp/from_archive/test.done",
        check=False,
    )
    return project, result.stdout + result.stderr


def record(project: Project, run: str, name: str):
    path = project.path(f"results/tiny/exp/{run}/{name}")
    return (
        yaml.safe_load(path.read_text()) if name.endswith(".yaml") else json.loads(path.read_text())
    )


@pytest.mark.slow
def test_seed_is_recorded_and_an_archive_reproduces_the_run(runs) -> None:
    project, _ = runs
    assert record(project, "a", "hparams.yaml")["seed"] == 42  # configs/workflow.yaml
    assert record(project, "a", "fit.done")["seed"] == 42
    metrics = record(project, "a", "test.done")["metrics"]
    assert {"test/acc", "test/loss"} <= set(metrics)
    assert record(project, "from_archive", "test.done")["metrics"] == metrics


@pytest.mark.slow
def test_archived_config_records_the_same_run(runs) -> None:
    project, _ = runs
    assert record(project, "from_archive", "hparams.yaml") == record(project, "a", "hparams.yaml")
    # Its own archive holds the same modules again.
    ours = project.path("results/tiny/exp/a/archived_config.py").read_text()
    theirs = project.path("results/tiny/exp/from_archive/archived_config.py").read_text()
    assert theirs.split("MODULES = ", 1)[1] == ours.split("MODULES = ", 1)[1]


@pytest.mark.slow
def test_loggers_get_the_recorded_hparams(runs) -> None:
    project, _ = runs
    hparams = record(project, "a", "hparams.yaml")
    assert hparams["objects"]["task_wrapper"]["optimizer"]["lr"] == 1e-3
    assert record(project, "a", "metrics/fit/hparams.yaml") == hparams


@pytest.mark.slow
def test_a_broken_config_stops_its_job_with_one_line(runs) -> None:
    project, output = runs
    assert not project.path("results/tiny/exp/broken/fit.done").exists()
    pattern = (
        r"Error: Config configs/broken\.py: the task_wrapper getter raised ValueError at "
        r"\S*configs/broken\.py:8: lr 0\.1 is too large for this model"
    )
    assert re.search(pattern, output), output
    assert re.search(pattern, project.path("results/tiny/exp/broken/logs/fit.log").read_text())
    assert "Traceback" not in project.path("results/tiny/exp/broken/logs/fit.log").read_text()
