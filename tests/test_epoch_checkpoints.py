"""`trainer.keep_every_n_epochs`: a fit also keeps checkpoints/epoch=<n>.ckpt every n epochs,
`main.py show` lists them, and turning it on for a finished fit keeps that fit (nothing
retrains: it is what the job keeps, not what it trains)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from dltemplate.layout import RunLayout

EVERY = """\
description: P
experiments:
  exp:
    description: E
    runs:
      mlp:
        description: three epochs, one checkpoint kept each
        config: configs/digits_mlp.py
        jobs: [fit]
        overrides: {trainer.max_epochs: 3, task_wrapper.model.hidden_dim: 8, KEEP}
"""


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_checkpoints_every_n_epochs(project) -> None:
    run = "results/tiny/exp/mlp"
    registry = project.path("configs/projects/tiny.yaml")
    registry.write_text(EVERY.replace(", KEEP", ""))
    project.snakemake("--cores", "1", f"{run}/fit.done")
    assert RunLayout(str(project.path(run))).epoch_checkpoints() == []
    first = json.loads(project.path(f"{run}/fit.done").read_text())

    registry.write_text(EVERY.replace("KEEP", "trainer.keep_every_n_epochs: 1"))
    project.snakemake("--cores", "1", f"{run}/fit.done")  # its params changed: the job runs
    assert (
        "its result is kept and nothing trains" in project.path(f"{run}/logs/fit.log").read_text()
    )
    assert (
        json.loads(project.path(f"{run}/fit.done").read_text())["global_step"]
        == first["global_step"]
    )

    project.main("exec", "-p", "tiny", "-e", "exp", "-n", "mlp", "-j", "1", "--restart")
    kept = [p.name for p in RunLayout(str(project.path(run))).epoch_checkpoints()]
    assert kept == ["epoch=000.ckpt", "epoch=001.ckpt", "epoch=002.ckpt"]
    shown = subprocess.run(
        [sys.executable, "main.py", "show", "tiny/exp/mlp"],
        cwd=project.root,
        env={**os.environ, "COLUMNS": "250"},  # one line a row
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    assert "kept best.ckpt, epoch=000.ckpt, epoch=001.ckpt, epoch=002.ckpt" in shown, shown


def test_a_negative_count_is_refused() -> None:
    from dltemplate.errors import UserError
    from dltemplate.jobs.trainer import epoch_checkpoints

    with pytest.raises(UserError, match="keep_every_n_epochs=-1: give 0"):
        epoch_checkpoints(RunLayout("results/p/e/r"), -1)
