"""The whole Lightning surface from a config or the command line (issue 17, points 1-2).

Any `lightning.Trainer` argument by path, type-checked against Trainer's own signature; the
callbacks as getters at `trainer.callbacks.*`; the bad input that must stop before training.

Broken on purpose: without `apply_trainer_overrides`, `--set trainer.accumulate_grad_batches=4`
is "Unknown override path" and every case here fails; without the monitor check, a monitor that
no metric logs passes until the first epoch's end and leaves hparams.yaml behind.
"""

from __future__ import annotations

import csv
import json

import pytest
import yaml

from tests.conftest import Project
from tests.test_config_mistakes import error_line

CONFIG = "configs/digits_mlp.py"

TRAINER_ARGUMENTS = [
    ("accumulate_grad_batches", "4", 4),
    ("gradient_clip_val", "0.5", 0.5),
    ("gradient_clip_algorithm", "value", "value"),
    ("precision", "bf16-mixed", "bf16-mixed"),
    ("max_steps", "30", 30),
    ("val_check_interval", "0.5", 0.5),
    ("check_val_every_n_epoch", "2", 2),
    ("detect_anomaly", "true", True),
    ("benchmark", "false", False),
]


def hparams(project: Project, *assignments: str) -> dict:
    sets = [arg for a in assignments for arg in ("--set", a)]
    return json.loads(project.main("hparams", "-c", CONFIG, *sets, "--json").stdout)


def test_any_trainer_argument_is_typed_and_recorded(project: Project) -> None:
    shown = hparams(project, *(f"trainer.{name}={text}" for name, text, _ in TRAINER_ARGUMENTS))
    rows = shown["paths"]
    for name, _, value in TRAINER_ARGUMENTS:
        row = rows[f"trainer.{name}"]
        assert row["value"] == value and row["origin"] == "override", row
        if name != "precision" and name != "gradient_clip_val":  # the getter's own parameters
            assert "(lightning.Trainer)" in row["type"], row


@pytest.mark.parametrize(
    ("assignment", "expected"),
    [
        ("trainer.acumulate_grad_batches=4", "closest: trainer.accumulate_grad_batches"),
        ("trainer.accumulate_grad_batches=four", "expected int, got str"),
        ("trainer.detect_anomaly=3", "expected bool, got int"),
        ("trainer.default_root_dir=/tmp/x", "the job owns: the job writes into the run's folder"),
        ("trainer.logger=false", "the job owns: the job makes the loggers"),
        ("trainer.enable_checkpointing=false", "the job owns: the fit job keeps best.ckpt"),
        ("trainer.fast_dev_run=true", "main.py debug"),
        ("trainer.callbacks.early_stopping.patience=three", "expected int | None, got str"),
    ],
)
def test_bad_trainer_overrides_are_one_line(project: Project, assignment, expected) -> None:
    result = project.main("hparams", "-c", CONFIG, "--set", assignment, check=False)
    assert expected in error_line(result)


REGISTRY = """\
description: The Lightning surface
experiments:
  exp:
    description: digits MLP runs with Trainer arguments and callbacks
    runs:
      done_when:
        description: the issue's own example
        config: configs/digits_mlp.py
        jobs: [fit]
        overrides:
          trainer.max_epochs: 3
          trainer.accumulate_grad_batches: 4
          trainer.callbacks.early_stopping.patience: 3
      logged:
        description: lr monitor, gradient norms, SWA and a deeper model summary
        config: configs/digits_mlp.py
        jobs: [fit]
        overrides:
          trainer.max_epochs: 2
          trainer.callbacks.lr_monitor.logging_interval: epoch
          trainer.callbacks.grad_norm.norm_type: 2.0
          trainer.callbacks.swa.swa_lrs: 0.01
          trainer.callbacks.model_summary.max_depth: 2
"""


@pytest.mark.slow
def test_trainer_arguments_and_callbacks_reach_the_fit(project: Project) -> None:
    project.write("configs/projects/tiny.yaml", REGISTRY)
    run = "results/tiny/exp/done_when"
    project.snakemake("-j2", f"{run}/fit.done", "results/tiny/exp/logged/fit.done")
    recorded = yaml.safe_load(project.path(f"{run}/hparams.yaml").read_text())["trainer"]
    assert recorded["accumulate_grad_batches"] == 4
    assert recorded["callbacks"]["early_stopping"]["patience"] == 3
    fit = json.loads(project.path(f"{run}/fit.done").read_text())
    assert fit["global_step"] == 3 * 5  # 20 batches an epoch in windows of 4
    with project.path("results/tiny/exp/logged/metrics/fit/metrics.csv").open() as f:
        columns = set(next(csv.reader(f)))
    assert {"lr-AdamW", "train/grad_norm_epoch"} <= columns, columns
    log = project.path("results/tiny/exp/logged/logs/fit.log").read_text()
    assert "Swapping scheduler `ReduceLROnPlateau` for `SWALR`" in log, log[-2000:]
    # a Trainer argument counts for reruns like any override
    project.write(
        "configs/projects/tiny.yaml",
        REGISTRY.replace("accumulate_grad_batches: 4", "accumulate_grad_batches: 2"),
    )
    dry = project.snakemake("-n", f"{run}/fit.done", "results/tiny/exp/logged/fit.done")
    assert "fit.done" in dry.stdout and dry.stdout.count("rule fit") == 1, dry.stdout


BAD_RUN = """\
      {name}:
        description: a bad setting
        config: configs/digits_mlp.py
        jobs: [fit]
        overrides:
          trainer.max_epochs: 1
          trainer.callbacks.early_stopping.patience: 2
          {override}
"""
BAD = {
    "monitor": (
        "trainer.monitor: val/los",
        "watches val/los, which the task wrapper never logs; did you mean val/loss?",
    ),
    "early_stopping": (
        "trainer.callbacks.early_stopping.monitor: val/f1",
        "EarlyStopping watches val/f1 with mode 'min', but val/f1 is better when higher",
    ),
    "clip": (
        "trainer.gradient_clip_algorithm: norm2",
        "lightning.Trainer refuses the run's trainer",
    ),
}


@pytest.mark.slow
def test_bad_monitors_stop_before_anything_is_written(project: Project) -> None:
    runs = "".join(BAD_RUN.format(name=name, override=o) for name, (o, _) in BAD.items())
    head = "description: Bad monitors\nexperiments:\n  exp:\n    description: each stops\n"
    project.write("configs/projects/tiny.yaml", f"{head}    runs:\n{runs}")
    targets = [f"results/tiny/exp/{name}/fit.done" for name in BAD]
    result = project.snakemake("-j1", "--keep-going", *targets, check=False)
    assert result.returncode != 0, result.stdout
    for name, (_, expected) in BAD.items():
        run = project.path(f"results/tiny/exp/{name}")
        log = (run / "logs" / "fit.log").read_text()
        last = log.strip().splitlines()[-1]
        assert last.startswith("Error: ") and expected in last, log[-3000:]
        assert "Traceback" not in log
        # Only the job's log and bookkeeping (its record, the attempt count, the lock) are written.
        for file in ("fit.done", "hparams.yaml", "archived_config.py", "metrics"):
            assert not (run / file).exists(), (name, file)
        assert not list(run.rglob("*.ckpt")), name
