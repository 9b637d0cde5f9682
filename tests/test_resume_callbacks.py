"""Exact resume with early stopping and with gradient accumulation.

Each fit runs the fit job's own function (`fit_run`) in a fresh process, as a job would; a test
callback (tests/fit_hooks.py) signals the fit's own process at a chosen batch, so the cut lands
at the same place under any load. The interrupted fit, run again, must end with the weights,
metrics and early-stopping state of an uninterrupted twin, having resumed (not restarted): its
second attempt starts training at the step of the checkpoint it resumed from.

Broken on purpose: without the gradients that ResumeCheckpoint saves inside an accumulation
window (`_accumulated_grads` returning None), the SIGTERM case ends with other weights; a fit
that restarts instead of resuming fails the `starts` assertions.
"""

from __future__ import annotations

import csv
import json
import os

import pytest
import torch

from tests.conftest import Project

CONFIG = '''\
"""Digits MLP with the template's callbacks and the test hooks (tests/fit_hooks.py)."""
from dltemplate import RootConfig
from .components.callbacks.default import get_callbacks
from .components.data_wrappers.digits import get_data_wrapper
from .components.models.mlp import get_model
from .components.task_wrappers.classifier import get_classifier
from .fit_hooks import fit_hooks


def get_task_wrapper(*, lr: float = 0.05):
    return get_classifier(model=get_model(hidden_dim=16), lr=lr)


def get_trainer(*, max_epochs: int = 12):
    return {"max_epochs": max_epochs, "accelerator": "cpu", "deterministic": True,
            "log_every_n_steps": 5, "callbacks": [*get_callbacks(), *fit_hooks()]}


def get_root_config_instance():
    return RootConfig(task_wrapper=get_task_wrapper, data_wrapper=get_data_wrapper,
                      trainer=get_trainer)
'''

FIT = """\
import json, sys
from dltemplate.jobs.fit import fit_run
folder, overrides, every_step = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3] == "1"
fit_run(run_dir=folder, config_file="configs/callbacks.py", seed=7, threads=1,
        overrides=overrides, done_file=folder + "/fit.done",
        checkpoint={"every_n_train_steps": 1} if every_step else None)
"""
BATCHES = 20  # ceil(1257 training samples / 64)
EARLY_STOP = {"trainer.callbacks.early_stopping.patience": 1}
ACCUMULATE = {"trainer.accumulate_grad_batches": 3, "trainer.max_epochs": 4}


def fit(project: Project, folder: str, overrides: dict, interrupt: str = "", every_step=False):
    env = {**os.environ, "DLT_TEST_SIGNAL": interrupt, "DLT_TEST_TRACE": "trace.json"}
    args = [folder, json.dumps(overrides), "1" if every_step else "0"]
    return project.forks.run(FIT, args, project.root, env)


def record(project: Project, folder: str) -> dict:
    return json.loads(project.path(f"{folder}/fit.done").read_text())


def starts(project: Project, folder: str) -> list[int]:
    return json.loads(project.path(f"{folder}/trace.json").read_text())["starts"]


def last_state(project: Project, folder: str) -> dict:
    return torch.load(
        project.path(f"{folder}/checkpoints/last.ckpt"), map_location="cpu", weights_only=False
    )


def metrics_rows(project: Project, folder: str) -> dict[tuple[str, str, str], float]:
    with project.path(f"{folder}/metrics/fit/metrics.csv").open() as f:
        return {
            (row["epoch"], row["step"], column): float(value)
            for row in csv.DictReader(f)
            for column, value in row.items()
            if value and column not in ("attempt", "epoch", "step")
        }


def assert_same_fit(project: Project, name: str, reference: str) -> None:
    got, expected = last_state(project, name), last_state(project, reference)
    for key, tensor in expected["state_dict"].items():
        assert torch.allclose(got["state_dict"][key], tensor, atol=1e-6), (name, key)
    assert metrics_rows(project, name) == pytest.approx(metrics_rows(project, reference), abs=1e-6)
    mine, theirs = record(project, name), record(project, reference)
    for key in ("epochs", "global_step", "stopped_early"):
        assert mine[key] == theirs[key], (name, key)
    assert mine["metrics"] == pytest.approx(theirs["metrics"], abs=1e-6)


@pytest.fixture
def callbacks_project(project: Project, forks) -> Project:
    project.forks = forks  # each fit a fresh process, forked after the imports
    project.add_fit_hooks()
    project.write("configs/callbacks.py", CONFIG)
    return project


@pytest.mark.slow
def test_early_stopping_resumes_with_its_counters(callbacks_project: Project) -> None:
    project = callbacks_project
    code, out = fit(project, "ref", EARLY_STOP)
    assert code == 0, out
    reference = record(project, "ref")
    stopped = reference["stopped_early"]
    assert stopped and stopped["epoch"] < 12 and "did not improve" in stopped["reason"], reference
    assert reference["epochs"] == stopped["epoch"]
    ref_state = last_state(project, "ref")["callbacks"]
    early = next(k for k in ref_state if k.startswith("EarlyStopping"))
    # Kill the fit in the epoch in which early stopping stops it: its counter stands at
    # patience - 1 ... then, after the resume, it must reach the same decision.
    cut = stopped["epoch"] - 1  # 0-based index of the stopping epoch
    code, out = fit(project, "kill", EARLY_STOP, f"{cut},5,SIGKILL")
    assert code == -9, out
    code, out = fit(project, "kill", EARLY_STOP)
    assert code == 0, out
    assert starts(project, "kill") == [0, cut * BATCHES]  # resumed from the epoch before
    assert_same_fit(project, "kill", "ref")
    assert last_state(project, "kill")["callbacks"][early] == ref_state[early]


@pytest.mark.slow
@pytest.mark.parametrize("signal_name", ["SIGKILL", "SIGTERM"])
def test_accumulation_resumes_inside_a_window(callbacks_project: Project, signal_name) -> None:
    project = callbacks_project
    code, out = fit(project, "ref", ACCUMULATE, every_step=True)
    assert code == 0, out
    steps_per_epoch = 7  # 20 batches in windows of 3: the last window has 2
    assert record(project, "ref")["global_step"] == 4 * steps_per_epoch
    # Batch 4 of epoch 2 (0-based) is the middle of the window of batches 3-5.
    code, out = fit(project, "cut", ACCUMULATE, f"2,4,{signal_name}", every_step=True)
    assert code == (-9 if signal_name == "SIGKILL" else 143), out
    code, out = fit(project, "cut", ACCUMULATE, every_step=True)
    assert code == 0, out
    # SIGKILL: from the step saved after the window of batches 0-2; SIGTERM: from the
    # checkpoint saved after batch 4, with batches 3 and 4's gradients
    assert starts(project, "cut") == [0, 2 * steps_per_epoch + 1]
    assert record(project, "cut")["resumed_from_step"] == 2 * steps_per_epoch + 1
    assert_same_fit(project, "cut", "ref")
