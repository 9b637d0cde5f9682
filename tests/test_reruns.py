"""Layer 4: what reruns after an edit, and why, on real Snakemake runs; a run that tests an
existing checkpoint; the run lock, an unloadable checkpoint and a fit that had finished, as a
user meets them.

The tests of this module share one project and run in file order, each building on the last.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest

from dltemplate.jobs.resume import run_lock
from tests.conftest import Project, make_project

pytestmark = pytest.mark.slow

QUICK = "trainer.max_epochs: 1, trainer.limit_train_batches: 3, trainer.limit_val_batches: 2"


def registry(b_width: int = 8, more: str = "") -> str:
    return f"""\
description: P
experiments:
  exp:
    description: E
    runs:
      a:
        description: its own config file
        config: configs/a_mlp.py
        overrides: {{{QUICK}, task_wrapper.model.hidden_dim: 8}}
      b:
        description: another config file, the same components
        config: configs/b_mlp.py
        jobs: [fit]
        overrides: {{{QUICK}, task_wrapper.model.hidden_dim: {b_width}}}
{more}"""


PRETRAINED = f"""\
      pretrained:
        description: the weights of a, tested again
        config: configs/a_mlp.py
        ckpt: data/pretrained.ckpt
        overrides: {{{QUICK}, task_wrapper.model.hidden_dim: 8}}
"""
A = "results/tiny/exp/a"
B = "results/tiny/exp/b"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """Runs a (fit, test, predict) and b (fit), both finished."""
    project = make_project(tmp_path_factory.mktemp("reruns") / "proj", registry())
    for name in ("a_mlp", "b_mlp"):
        shutil.copy(project.path("configs/digits_mlp.py"), project.path(f"configs/{name}.py"))
    targets = (f"{A}/test.done", f"{A}/predict.done", f"{B}/fit.done")
    project.snakemake("--cores", "2", *targets)
    return project


def dry_run(project: Project, *targets: str) -> dict[str, str]:
    """`{job: reason}` of the jobs a dry run would run, e.g. {"fit a": "Params have ..."}."""
    result = project.snakemake("-n", "--cores", "1", *targets)
    jobs = {}
    for block in re.split(r"\n(?=rule |localrule )", result.stdout + result.stderr):
        rule = re.match(r"(?:local)?rule (\w+):", block)
        output = re.search(r"output: results/tiny/exp/(\w+)/", block)
        reason = re.search(r"reason: (.*)", block)
        if rule and output:
            jobs[f"{rule.group(1)} {output.group(1)}"] = reason.group(1) if reason else ""
    return jobs


ALL = (f"{A}/test.done", f"{A}/predict.done", f"{B}/fit.done")


def test_saving_without_a_change_reruns_nothing(project: Project) -> None:
    for relative in ("configs/a_mlp.py", "configs/components/models/mlp.py"):
        path = project.path(relative)
        path.write_text(path.read_text())  # an editor's save: new mtime, same content
    result = project.snakemake("-n", "--cores", "1", *ALL)
    assert "Nothing to be done" in result.stdout + result.stderr


def test_a_config_edit_reruns_that_run_and_starts_its_fit_fresh(project: Project) -> None:
    config = project.path("configs/a_mlp.py")
    config.write_text(config.read_text().replace("lr: float = 1e-3", "lr: float = 2e-3"))
    jobs = dry_run(project, *ALL)
    assert set(jobs) == {"fit a", "test a", "predict a"}  # not b
    assert jobs["fit a"].startswith("Params have changed since last execution")
    assert "configs/a_mlp.py" in jobs["fit a"]

    project.snakemake("--cores", "1", f"{A}/fit.done")
    log = project.path(f"{A}/logs/fit.log").read_text()
    assert "Starting fresh: moved the earlier fit to results/tiny/exp/a/checkpoints.old-1/" in log
    assert "changed files: configs/a_mlp.py" in log
    old = project.path(f"{A}/checkpoints.old-1")
    assert (old / "last.ckpt").is_file() and (old / "logs/fit.attempt-1.log").is_file()
    assert json.loads(project.path(f"{A}/fit.done").read_text())["attempts"] == 1


def test_an_import_edit_reruns_every_run_that_imports_it(project: Project) -> None:
    module = project.path("configs/components/models/mlp.py")
    original = module.read_text()
    module.write_text(original + "\n# widths below 16 underfit\n")
    jobs = dry_run(project, *ALL)
    assert {"fit a", "fit b"} <= set(jobs)
    assert "configs/components/models/mlp.py" in jobs["fit b"]
    module.write_text(original)


def test_an_override_edit_reruns_that_run_and_touch_avoids_it(project: Project) -> None:
    project.write("configs/projects/tiny.yaml", registry(b_width=12))
    jobs = dry_run(project, f"{A}/fit.done", f"{B}/fit.done")
    assert set(jobs) == {"fit b"} and "'task_wrapper.model.hidden_dim': 12" in jobs["fit b"]
    project.snakemake("--touch", "--cores", "1", f"{B}/fit.done")  # "the edit changes nothing"
    assert dry_run(project, f"{B}/fit.done") == {}


def test_a_run_tests_an_existing_checkpoint_without_fitting(project: Project) -> None:
    checkpoint = project.path("data/pretrained.ckpt")
    checkpoint.parent.mkdir(exist_ok=True)
    shutil.copy(project.path(f"{A}/checkpoints/best.ckpt"), checkpoint)
    project.write("configs/projects/tiny.yaml", registry(b_width=12, more=PRETRAINED))
    run = "results/tiny/exp/pretrained"
    project.snakemake("--cores", "1", f"{run}/test.done")
    record = json.loads(project.path(f"{run}/test.done").read_text())
    assert record["checkpoint"] == "data/pretrained.ckpt"
    assert 0 <= record["metrics"]["test/acc"] <= 1
    assert not project.path(f"{run}/fit.done").exists()
    assert not project.path(f"{run}/checkpoints").exists()

    # other weights in its place (a's before its config edit), written after the test ran
    shutil.copy(project.path(f"{A}/checkpoints.old-1/best.ckpt"), checkpoint)
    later = project.path(f"{run}/test.done").stat().st_mtime_ns + 2 * 10**9
    os.utime(checkpoint, ns=(later, later))
    jobs = dry_run(project, f"{run}/test.done")
    assert jobs == {"test pretrained": "Updated input files: data/pretrained.ckpt"}


def test_a_second_writer_is_stopped_by_the_run_lock(project: Project) -> None:
    before = project.path(f"{A}/checkpoints/last.ckpt").read_bytes()
    project.path(f"{A}/fit.done").unlink()  # as a killed Snakemake leaves it: the fit reruns
    with run_lock(project.path(A)):  # an orphaned fit of a, still running
        result = project.snakemake("--cores", "1", f"{A}/fit.done", check=False)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert f"Error: Run {A} is being fitted by another process (pid {os.getpid()} on host" in output
    assert project.path(f"{A}/checkpoints/last.ckpt").read_bytes() == before  # untouched


def test_an_unloadable_checkpoint_stops_with_the_way_out(project: Project) -> None:
    # a's fit was killed after its last checkpoint, which a full disk had cut short
    last = project.path(f"{A}/checkpoints/last.ckpt")
    last.write_bytes(last.read_bytes()[:1000])
    state_file = project.path(f"{A}/checkpoints/fit_state.json")
    state = json.loads(state_file.read_text())
    state_file.write_text(json.dumps({**state, "finished": False}))
    result = project.snakemake("--cores", "1", f"{A}/fit.done", check=False)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert f"Error: Checkpoint {A}/checkpoints/last.ckpt cannot be loaded (" in output
    assert f"`touch {A}/RESTART`" in output
    assert last.stat().st_size == 1000 and not project.path(f"{A}/fit.done").exists()

    Path(project.path(f"{A}/RESTART")).touch()  # the way out the message names
    project.snakemake("--cores", "1", f"{A}/fit.done")
    assert project.path(f"{A}/checkpoints.old-2/last.ckpt").stat().st_size == 1000
    assert project.path(f"{A}/checkpoints/last.ckpt").stat().st_size > 1000


def test_a_finished_fit_is_kept_unless_a_restart_is_asked_for(project: Project) -> None:
    """A job that outlived a killed Snakemake finished a's fit while the job submitted in its
    place waited; that job finds fit.done gone (Snakemake removes a job's outputs first)."""
    done, attempts = project.path(f"{A}/fit.done"), project.path(f"{A}/metrics/fit/attempts.json")
    record, trained = done.read_text(), attempts.read_text()
    old = len(list(project.path(A).glob("checkpoints.old-*")))
    done.unlink()
    project.snakemake("--cores", "1", f"{A}/fit.done")
    log = project.path(f"{A}/logs/fit.log").read_text()
    assert "with this config: its result is kept and nothing trains" in log, log
    assert "Fit attempt" not in log and "Starting fresh" not in log
    assert done.read_text() == record and attempts.read_text() == trained  # no attempt trained
    assert len(list(project.path(A).glob("checkpoints.old-*"))) == old

    # A forced rerun asks for a restart: the finished fit is moved aside and a trains again.
    result = project.snakemake("-R", "fit", "--cores", "1", f"{A}/fit.done")
    output = result.stdout + result.stderr
    assert f"A forced rerun of the finished fit of {A}: it starts over" in output
    log = project.path(f"{A}/logs/fit.log").read_text()
    moved = f"{A}/checkpoints.old-{old + 1}/ because a restart was asked for"
    assert f"Fit attempt 1. Starting fresh: moved the earlier fit to {moved}" in log, log
    assert not project.path(f"{A}/RESTART").exists()
