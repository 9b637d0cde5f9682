"""Layer 1: job records, their assembly into run.json and project.json, and the job states
that `ls` derives from the run folders."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from dltemplate.errors import UserError
from dltemplate.registry.model import Run
from dltemplate.results.run_records import (
    assemble_run_record,
    job_record,
    job_record_path,
    record_targets,
    run_info,
    write_project_record,
)
from dltemplate.results.run_status import job_status, locked_outputs, main_metric, run_statuses


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Run:
    monkeypatch.chdir(tmp_path)
    return Run("p", "e", "r", "a run", "configs/c.py", ("fit", "test"), {"seed": 1})


def test_job_record_done(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    with job_record(run.folder, "fit") as record:
        inside = json.loads(job_record_path(run.folder, "fit").read_text())
        assert inside["status"] == "running" and inside["pid"] == os.getpid()
        assert record["ended"] is None
    done = json.loads(job_record_path(run.folder, "fit").read_text())
    assert done["status"] == "done" and done["seconds"] >= 0
    assert done["started"] <= done["ended"]
    assert done["host"] == socket.gethostname() and done["slurm_job_id"] == "4242"
    assert done["versions"]["python"] == ".".join(map(str, sys.version_info[:3]))
    assert done["versions"]["lightning"].startswith("2.6")
    assert set(done["git"]) == {"commit", "dirty"}
    assert done["git"]["commit"] is None  # tmp_path is not a git tree


def test_git_state_in_a_repository(run: Run) -> None:
    subprocess.run(["git", "init", "-q"], check=True)
    Path("a.txt").write_text("a")
    subprocess.run(["git", "add", "a.txt"], check=True)
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "a"], check=True
    )
    with job_record(run.folder, "fit"):
        pass
    clean = json.loads(job_record_path(run.folder, "fit").read_text())["git"]
    assert len(clean["commit"]) == 40 and clean["dirty"] is False
    Path("a.txt").write_text("b")
    with job_record(run.folder, "fit"):
        pass
    assert json.loads(job_record_path(run.folder, "fit").read_text())["git"]["dirty"] is True


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (UserError("Config c.py: bad\nsecond line"), "UserError: Config c.py: bad"),
        (KeyboardInterrupt(), "interrupted (KeyboardInterrupt)"),
    ],
)
def test_job_record_failed(run: Run, error: BaseException, message: str) -> None:
    with pytest.raises(type(error)), job_record(run.folder, "test"):
        raise error
    record = json.loads(job_record_path(run.folder, "test").read_text())
    assert record["status"] == "failed" and record["error"] == message and record["ended"]


def test_run_and_project_records(run: Run) -> None:
    with job_record(run.folder, "fit"):
        pass
    Path(run.folder, "test.done").write_text(json.dumps({"metrics": {"test/acc": 0.9}}))
    info = run_info(run)
    record = assemble_run_record(info, run.folder)
    assert record["name"] == "r" and record["overrides"] == {"seed": 1}
    assert record["records"]["fit"]["status"] == "done"
    assert record["records"]["test"] == {"status": "not run"}
    assert record["metrics"] == {"test/acc": 0.9}
    Path(run.folder, "run.json").write_text(json.dumps(record))
    project = {
        "name": "p",
        "description": "P",
        "created": None,
        "experiments": {"e": {"description": "E", "created": None, "runs": ["r"]}},
    }
    write_project_record(info=project, run_records=[f"{run.folder}/run.json"], out="p.json")
    written = json.loads(Path("p.json").read_text())
    assert written["experiments"]["e"]["runs"]["r"] == record


def test_record_targets_cover_runs_and_projects(tmp_path: Path) -> None:
    from dltemplate.registry.model import load_registry

    folder = tmp_path / "projects"
    folder.mkdir()
    (folder / "p.yaml").write_text(
        "description: P\nexperiments:\n  e: {description: E, runs: {r: {description: R, "
        "config: c.py}}}\n  empty: {description: E}\n"
    )
    (folder / "q.yaml").write_text("description: Q\nexperiments: {e: {description: E}}\n")
    assert record_targets(load_registry(folder)) == [
        "results/p/e/r/run.json",
        "results/p/project.json",
    ]


def write_record(run: Run, job: str, **fields) -> None:
    path = job_record_path(run.folder, job)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"job": job, "host": socket.gethostname(), **fields}))


def test_states_from_files(run: Run) -> None:
    """done / failed / not run without Snakemake; running while the process lives."""
    Path(run.folder).mkdir(parents=True)
    assert job_status(run, "fit", None, set(), {}).status == "not run"
    write_record(run, "fit", status="running", pid=os.getpid(), started="t0")
    state = job_status(run, "fit", None, set(), {})
    assert (state.status, state.started) == ("running", "t0")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    write_record(run, "fit", status="running", pid=dead.pid)
    state = job_status(run, "fit", None, set(), {})
    assert (state.status, state.reason) == ("failed", "interrupted: its process is gone")
    write_record(run, "fit", status="failed", error="OverrideError: Unknown override path")
    state = job_status(run, "fit", None, set(), {})
    assert (state.status, state.reason) == ("failed", "OverrideError: Unknown override path")
    Path(run.folder, "fit.done").write_text("{}")
    assert job_status(run, "fit", None, set(), {}).status == "done"
    write_record(run, "test", status="done")
    assert job_status(run, "test", None, set(), {}).reason.startswith("its output")


def test_running_on_another_host_trusts_snakemakes_lock(run: Run) -> None:
    write_record(run, "fit", status="running", pid=1, host="node042")
    assert job_status(run, "fit", None, set(), {}).status == "failed"
    locks = Path(".snakemake/locks")
    locks.mkdir(parents=True)
    (locks / "0.output.lock").write_text(f"{run.folder}/fit.done\n{run.folder}/test.done\n")
    assert locked_outputs() == {f"{run.folder}/fit.done", f"{run.folder}/test.done"}
    assert job_status(run, "fit", None, locked_outputs(), {}).status == "running"


def test_stale_comes_from_snakemakes_plan(run: Run) -> None:
    Path(run.folder).mkdir(parents=True)
    for job in ("fit", "test"):
        Path(run.folder, f"{job}.done").write_text("{}")
    plan = {
        f"{run.folder}/fit.done": ("params changed", "update pending"),
        f"{run.folder}/test.done": ("ok", "update pending"),
    }
    fit = job_status(run, "fit", plan, set(), {})
    assert (fit.status, fit.reason) == ("stale", "params changed")
    test = job_status(run, "test", plan, set(), {"fit": fit})
    assert (test.status, test.reason) == ("stale", "an upstream job is stale")


def test_without_a_snakefile_stale_is_not_checked(run: Run) -> None:
    Path(run.folder).mkdir(parents=True)
    Path(run.folder, "fit.done").write_text("{}")
    states, note = run_statuses([run])
    assert states[run.key]["fit"].status == "done" and "test" in states[run.key]
    assert "no Snakefile" in note


def test_main_metric() -> None:
    assert main_metric({"test/loss": 1.0, "test/f1": 0.5, "test/acc": 0.6}) == "test/acc"
    assert main_metric({"test/loss": 1.0}) == "test/loss"
    assert main_metric({}) is None
