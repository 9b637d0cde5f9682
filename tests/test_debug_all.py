"""`main.py debug -p P [-e E] --all`: a fast_dev_run of every declared run (lightning-hydra-
template's "every config" test, on the registry), a line for each failure and a count, exit
status 1 when one fails; nothing of the runs' own results is written."""

from __future__ import annotations

BROKEN = '''\
"""The digits MLP, whose model fails on its first batch."""
from torch import nn

from dltemplate import RootConfig

from .components.data_wrappers.digits import get_data_wrapper
from .components.task_wrappers.classifier import get_classifier
from .components.trainers.default import get_trainer


class Broken(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(64, 10)

    def forward(self, x):
        raise ValueError("boom in forward")


def get_task_wrapper(*, lr: float = 1e-3):
    return get_classifier(model=Broken(), lr=lr)


def get_root_config_instance() -> RootConfig:
    return RootConfig(
        task_wrapper=get_task_wrapper, data_wrapper=get_data_wrapper, trainer=get_trainer
    )
'''
TWO_RUNS = """\
description: P
experiments:
  exp:
    description: E
    runs:
      mlp: {description: fine, config: configs/digits_mlp.py}
      broken: {description: fails, config: configs/broken_mlp.py}
"""


def test_debug_all_runs_every_declared_run(project) -> None:
    project.write("configs/broken_mlp.py", BROKEN)
    project.write("configs/projects/tiny.yaml", TWO_RUNS)
    result = project.main("debug", "-p", "tiny", "--all", check=False)
    assert result.returncode == 1, result
    out = result.stdout + result.stderr
    assert "fast_dev_run: 1 of 2 runs passed; failed: tiny/exp/broken" in out, out
    assert "Error: boom in forward" in out, out
    assert not project.path("results/tiny/exp/mlp/fit.done").exists()
    assert project.path("results/tiny/exp/mlp/debug/fast/summary.json").exists()

    project.write(
        "configs/projects/tiny.yaml", TWO_RUNS.replace("      broken:", "      # broken:")
    )
    result = project.main("debug", "-p", "tiny", "-e", "exp", "--all")
    assert "fast_dev_run: 1 of 1 runs passed" in result.stdout, result.stdout


def test_debug_without_a_run_or_all_is_one_line(project) -> None:
    result = project.main("debug", "-p", "tiny", "-e", "exp", check=False)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "Error: debug needs -e, -n and --mode for one run (or --all for every run)"
    )
    result = project.main("debug", "-p", "tiny", "--all", "--mode", "overfit", check=False)
    assert result.stderr.strip().endswith("leave out -n and --mode"), result.stderr
