"""A finished fit given more epochs (trainer.max_epochs raised, nothing else changed) continues
from its last checkpoint when asked to (`--config continue_fits=true`, `main.py exec
--continue`), and its record says so; without that, or with fewer epochs or any other change,
it starts fresh as before, and the log says how to continue instead.

Broken on purpose: with plan_fit's more_epochs branch removed, the workflow test fails (the log
says "Starting fresh" and resumed_from_step is 0).
"""

from __future__ import annotations

import json

import pytest

from dltemplate.jobs.resume import more_epochs

BASE = {"config": "c.py", "sources": {"c.py": "x"}, "seed": 1}


def _state(overrides: dict, finished_epochs: int | None = None) -> dict:
    state = {
        "fingerprint": {**BASE, "overrides": overrides},
        "finished": finished_epochs is not None,
    }
    if finished_epochs is not None:
        state["result"] = {"epochs": finished_epochs}
    return state


def _current(overrides: dict) -> dict:
    return {**BASE, "overrides": overrides}


def test_which_changes_continue() -> None:
    raised = _current({"trainer.max_epochs": 40})
    assert more_epochs(_state({"trainer.max_epochs": 20}, 20), raised) == "20 -> 40"
    assert more_epochs(_state({"trainer.max_epochs": 20}), raised) == "20 -> 40"  # interrupted
    assert more_epochs(_state({}, 20), raised) == "20 trained -> 40"  # the getter's default
    assert more_epochs(_state({}), raised) is None  # how far it was to go is unknown
    assert more_epochs(_state({"trainer.max_epochs": 50}, 50), raised) is None  # fewer
    assert more_epochs(_state({}, 40), raised) is None
    other = _current({"trainer.max_epochs": 40, "task_wrapper.lr": 0.1})
    assert more_epochs(_state({"trainer.max_epochs": 20}, 20), other) is None
    assert more_epochs(_state({"trainer.max_epochs": 20}, 20), {**raised, "seed": 2}) is None
    text = _current({"trainer.max_epochs": "40"})
    assert more_epochs(_state({"trainer.max_epochs": 20}, 20), text) is None


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_finished_fit_given_more_epochs_continues_when_asked(project) -> None:
    run = "results/tiny/exp/mlp"
    project.snakemake("--cores", "1", f"{run}/fit.done")
    first = json.loads(project.path(f"{run}/fit.done").read_text())
    assert first["epochs"] == 2
    registry = project.path("configs/projects/tiny.yaml")
    registry.write_text(registry.read_text().replace("max_epochs: 2", "max_epochs: 3"))
    project.main("exec", "-p", "tiny", "-e", "exp", "-n", "mlp", "-j", "1", "--continue")
    second = json.loads(project.path(f"{run}/fit.done").read_text())
    log = project.path(f"{run}/logs/fit.log").read_text()
    assert "Continuing from" in log and "max_epochs 2 -> 3" in log, log
    assert second["epochs"] == 3 and second["resumed_from_step"] == first["global_step"], second
    assert second["attempts"] == 2 and second["continued"] == ["2 -> 3"], second
    assert not project.path(f"{run}/checkpoints.old-1").exists()  # nothing moved aside

    registry.write_text(registry.read_text().replace("max_epochs: 3", "max_epochs: 4"))
    project.snakemake("--cores", "1", f"{run}/fit.done")  # not asked: starts fresh
    log = project.path(f"{run}/logs/fit.log").read_text()
    assert "Starting fresh: moved the earlier fit" in log, log
    assert "to continue from last.ckpt instead, run with --config continue_fits=true" in log
    third = json.loads(project.path(f"{run}/fit.done").read_text())
    assert third["epochs"] == 4 and not third["resumed_from_step"] and "continued" not in third
