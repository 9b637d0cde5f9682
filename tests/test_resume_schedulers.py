"""Layer 3: exact resume for every kind of LR scheduler Lightning steps, after SIGTERM and SIGKILL.

Each fit runs the fit job's own function (`fit_run`) in a fresh process, as a job would (forked
after the imports, as a warm job is: tests/forks.py). A test
callback in the config (tests/fit_hooks.py) signals its own process at a chosen batch, so the
interruption lands at the same place under any load. Each case interrupts an epoch at whose end the scheduler changes
the lr in the uninterrupted reference:

- SIGTERM in epoch e: the fit saves a checkpoint after the batch and resumes inside epoch e,
  where Lightning skips the plateau step at the epoch's end (its fit loop's `restarting`);
- SIGKILL in epoch e + 1: the fit resumes from the checkpoint saved at the end of epoch e, which
  Lightning writes before that epoch's plateau step.

Broken on purpose (ResumeCheckpoint without dltemplate.jobs.plateau, as before the fix): the
plateau cases end with another lr (0.075 against 0.15) and other weights. Without the task
wrapper's running loss in the checkpoint, the SIGTERM case's interrupted epoch logs a
train/loss over the batches after the resume only, and the metrics.csv comparison fails.
"""

from __future__ import annotations

import csv
import json
import os

import pytest
import torch

from tests.conftest import Project

CONFIG = '''\
"""Digits MLP with a chosen LR scheduler and the test hooks (tests/fit_hooks.py)."""
from functools import partial

import torch

from dltemplate import RootConfig
from .components.data_wrappers.digits import get_data_wrapper
from .components.models.mlp import get_model
from .components.task_wrappers.classifier import get_classifier
from .components.trainers.default import get_trainer as default_trainer
from .fit_hooks import fit_hooks

PLATEAU = partial(torch.optim.lr_scheduler.ReduceLROnPlateau, factor=0.5, patience=0)
SCHEDULES = {
    "plateau": {"scheduler": PLATEAU, "monitor": "val/loss", "interval": "epoch"},
    "plateau_every_2": {"scheduler": PLATEAU, "monitor": "val/loss", "interval": "epoch",
                        "frequency": 2},
    "plateau_train_loss": {"scheduler": PLATEAU, "monitor": "train/loss", "interval": "epoch"},
    "plateau_steps": {"scheduler": partial(torch.optim.lr_scheduler.ReduceLROnPlateau,
                      factor=0.9, patience=0), "monitor": "val/loss", "interval": "step",
                      "frequency": 3, "strict": False},
    "step_lr_every_2": {"scheduler": partial(torch.optim.lr_scheduler.StepLR, step_size=1,
                        gamma=0.5), "interval": "epoch", "frequency": 2},
    "exponential_steps": {"scheduler": partial(torch.optim.lr_scheduler.ExponentialLR,
                          gamma=0.98), "interval": "step"},
}


def get_task_wrapper(*, schedule: str = "plateau", lr: float = 0.3):
    wrapper = get_classifier(model=get_model(hidden_dim=16), lr=lr)
    wrapper.lr_scheduler = SCHEDULES[schedule]
    return wrapper


def get_trainer(*, max_epochs: int = 8):
    return {**default_trainer(max_epochs=max_epochs), "callbacks": fit_hooks()}


def get_root_config_instance():
    return RootConfig(task_wrapper=get_task_wrapper, data_wrapper=get_data_wrapper,
                      trainer=get_trainer)
'''

FIT = """\
import sys
from dltemplate.jobs.fit import fit_run
folder, schedule = sys.argv[1:]
fit_run(run_dir=folder, config_file="configs/schedules.py", seed=42, threads=1,
        overrides={"task_wrapper.schedule": schedule},
        done_file=folder + "/fit.done")
"""
STEPS_PER_EPOCH = 20  # ceil(1257 training samples / 64)
AT_BATCH = 5


def fit(project: Project, folder: str, schedule: str, interrupt: str = "") -> int:
    env = {**os.environ, "DLT_TEST_SIGNAL": interrupt, "DLT_TEST_TRACE": "trace.json"}
    return project.forks.run(FIT, [folder, schedule], project.root, env)[0]


def trace(project: Project, folder: str) -> dict:
    return json.loads(project.path(f"{folder}/trace.json").read_text())


def final_state(project: Project, folder: str) -> dict:
    return torch.load(
        project.path(f"{folder}/checkpoints/last.ckpt"), map_location="cpu", weights_only=False
    )


def metrics_rows(project: Project, folder: str) -> dict[tuple[str, str], float]:
    """{(epoch, column): value} of the merged metrics.csv, without the attempt column."""
    with project.path(f"{folder}/metrics/fit/metrics.csv").open() as f:
        return {
            (row["epoch"], column): float(value)
            for row in csv.DictReader(f)
            for column, value in row.items()
            if value and column not in ("attempt", "epoch", "step")
        }


def changes_after(lrs: dict[str, float]) -> list[int]:
    """The epochs at whose end the lr changed."""
    return [e for e in range(len(lrs) - 1) if lrs[str(e + 1)] != lrs[str(e)]]


@pytest.fixture
def schedules(project: Project, forks) -> Project:
    project.forks = forks  # each fit a fresh process, forked after the imports
    project.add_fit_hooks()
    project.write("configs/schedules.py", CONFIG)
    return project


@pytest.mark.slow
@pytest.mark.parametrize(
    "schedule",
    [
        "plateau",
        "plateau_every_2",
        "plateau_train_loss",
        "plateau_steps",
        "step_lr_every_2",
        "exponential_steps",
    ],
)
def test_resume_is_exact_for_every_scheduler(schedules: Project, schedule: str) -> None:
    project = schedules
    assert fit(project, "ref", schedule) == 0
    reference = trace(project, "ref")
    changed = [e for e in changes_after(reference["lr"]) if 0 < e < 6]
    assert changed, f"{schedule}: the lr never changes in epochs 1-5: {reference['lr']}"
    epoch = changed[0]
    expected = final_state(project, "ref")

    for name, signal_name, in_epoch in (("term", "SIGTERM", epoch), ("kill", "SIGKILL", epoch + 1)):
        code = fit(project, name, schedule, f"{in_epoch},{AT_BATCH},{signal_name}")
        assert code == (143 if signal_name == "SIGTERM" else -9), (name, code)
        assert fit(project, name, schedule) == 0
        got = trace(project, name)
        assert got["lr"] == reference["lr"], (schedule, name)
        # a resume, not a restart: the second attempt starts where the checkpoint ends
        resumed_at = (
            in_epoch * STEPS_PER_EPOCH + AT_BATCH + 1  # after the signalled batch
            if signal_name == "SIGTERM"
            else in_epoch * STEPS_PER_EPOCH  # the end of the epoch before
        )
        assert got["starts"] == [0, resumed_at], (schedule, name)
        record = json.loads(project.path(f"{name}/fit.done").read_text())
        assert record["attempts"] == 2 and record["resumed_from_step"] == resumed_at
        # the records are fair: every epoch's metrics over all its batches, the time over attempts
        assert metrics_rows(project, name) == pytest.approx(metrics_rows(project, "ref"), abs=1e-6)
        attempts = json.loads(project.path(f"{name}/metrics/fit/attempts.json").read_text())
        seconds = [a["seconds"] for a in attempts]
        assert len(seconds) == 2 and all(s > 0 for s in seconds)
        assert record["fit_seconds"] == pytest.approx(sum(seconds), abs=0.01)
        state = final_state(project, name)
        assert state["lr_schedulers"] == expected["lr_schedulers"], (schedule, name)
        for key, tensor in expected["state_dict"].items():
            assert torch.allclose(state["state_dict"][key], tensor, atol=1e-6), (name, key)
