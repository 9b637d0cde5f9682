"""A job's log reads clearly: each line once, no third-party noise a user cannot act on, epoch
lines that describe their epoch, and the error as the last line.

Broken on purpose: without `_NotTwice` every Lightning INFO line appears twice; printing the
epoch line in `on_validation_end` (as before) shows the previous epoch's train/loss; letting a
RuntimeError pass through job_log leaves "Fit stopped inside a batch ..." as the last line.
"""

from __future__ import annotations

from tests.conftest import TINY_REGISTRY, Project

FAILING = '''\
"""The digits MLP whose model raises in the second epoch's fourth training batch."""
import torch

from dltemplate import RootConfig
from wrappers import BasicTaskWrapper

from .components.data_wrappers.digits import get_data_wrapper
from .components.models.mlp import get_model
from .components.task_wrappers.classifier import get_classifier
from .components.trainers.default import get_trainer


class Failing(torch.nn.Module):
    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.calls = 0

    def forward(self, x):
        self.calls += self.training
        if self.calls == 20 + 4:  # 20 batches an epoch
            raise RuntimeError("boom in the user's model")
        return self.inner(x)


def get_task_wrapper(*, lr: float = 1e-3) -> BasicTaskWrapper:
    return get_classifier(model=Failing(get_model(hidden_dim=16)), lr=lr)


def get_root_config_instance() -> RootConfig:
    return RootConfig(
        task_wrapper=get_task_wrapper, data_wrapper=get_data_wrapper, trainer=get_trainer
    )
'''


def test_a_failed_fits_log_is_readable_and_ends_with_its_error(project: Project) -> None:
    project.write("configs/failing.py", FAILING)
    project.write(
        "configs/projects/tiny.yaml",
        TINY_REGISTRY.replace("configs/digits_mlp.py", "configs/failing.py"),
    )
    result = project.snakemake("--cores", "1", "results/tiny/exp/mlp/fit.done", check=False)
    assert result.returncode != 0
    log = project.path("results/tiny/exp/mlp/logs/fit.log").read_text()
    lines = log.strip().splitlines()
    error = "Error: RuntimeError: boom in the user's model (the traceback is in the log above)"
    assert lines[-1] == error, lines[-5:]
    assert error in result.stdout + result.stderr  # what Snakemake shows
    assert "Traceback" in log  # kept for the bug report, above the error
    assert log.count("GPU available") == 1
    assert "Tip" not in log and "LeafSpec" not in log and "srun" not in log
    first = next(line for line in lines if line.startswith("epoch 1/"))
    assert "train/loss=" in first and "val/loss=" in first
