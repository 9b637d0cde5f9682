"""What a job records about its environment (dltemplate.results.environment), and how `ls`
tells a live job from a stale record whose pid another process took.

Broken on purpose: with `process_alive` back to `os.kill(pid, 0)` alone, the reused-pid test
fails (the stale record reads as running); with `_keep` writing every job's list to the shared
file name, the job whose packages differ loses its own file and its test fails.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dltemplate.layout import RunLayout
from dltemplate.registry.model import Run
from dltemplate.results import environment
from dltemplate.results.run_records import job_record, job_record_path
from dltemplate.results.run_status import job_status, process_alive
from tests.conftest import UNCOMMITTED, Project, git

A = RunLayout.of("tiny", "exp", "a")
B = RunLayout.of("tiny", "exp", "b")


def read(project: Project, path: str) -> dict:
    return json.loads(project.path(path).read_text())


def metadata_packages() -> dict[str, str]:
    """importlib.metadata's own answer, the first distribution of each name on sys.path."""
    found: dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        found.setdefault(environment._normal(dist.metadata["Name"]), dist.version)
    return dict(sorted(found.items()))


def test_the_package_list_is_importlib_metadatas() -> None:
    assert environment.installed_packages() == metadata_packages()


@pytest.mark.slow
def test_every_job_records_its_environment(finished_runs: Project) -> None:
    project = finished_runs
    for job in ("fit", "test"):
        record = read(project, A.record(job))
        assert record["status"] == "done"
        assert record["host"] == socket.gethostname()
        assert isinstance(record["pid_started"], float) and record["pid_started"] < time.time()
        # a's tree had an uncommitted edit: dirty, with the patch beside the run
        git_facts = record["git"]
        assert len(git_facts["commit"]) == 40 and git_facts["dirty"] is True
        assert git_facts["diff"] == "env/diff.patch"
        patch = project.path(A.diff_patch()).read_text()
        assert f"+{UNCOMMITTED.strip()}" in patch and "configs/digits_mlp.py" in patch
        assert git_facts["diff_bytes"] == len(patch.encode()) and "diff_note" not in git_facts
        # the packages, shared by fit and test
        assert record["packages"]["file"] == "env/packages.txt"
        listed = environment.read_packages(project.path(A.packages()).read_text())
        assert listed == metadata_packages()
        assert record["packages"]["count"] == len(listed)
        versions = record["versions"]
        assert versions["python"] == platform.python_version()
        assert versions["torch"] == importlib.metadata.version("torch")
        assert versions["snakemake"] == importlib.metadata.version("snakemake")
        assert "cuda" in versions and "cudnn" in versions  # torch's; None on a CPU build
        assert record["cpu"]["cores"] == os.cpu_count() and record["cpu"]["model"]
        assert record["gpus"] is None  # the tests run without GPUs
        assert "snakemake" in record["snakemake"]
        assert "results/tiny/exp/a/test.done" in record["snakemake"]
    assert not project.path(A.packages("test")).exists()
    # b ran on the next commit, with a clean tree: no patch
    b_git = read(project, B.record("fit"))["git"]
    assert b_git["dirty"] is False and "diff" not in b_git
    assert b_git["commit"] != read(project, A.record("fit"))["git"]["commit"]
    assert not project.path(B.diff_patch()).exists()


@pytest.fixture
def git_tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    Path(".gitignore").write_text("results/\n")
    Path("big.txt").write_text("x\n")
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-qm", "one")
    return tmp_path


def test_a_large_diff_is_cut_and_the_record_says_so(git_tree: Path) -> None:
    Path("big.txt").write_text("x\n" + ("z" * 99 + "\n") * 12_000)
    with job_record("results/p/e/r", "fit"):
        pass
    record = json.loads(job_record_path("results/p/e/r", "fit").read_text())["git"]
    kept = Path(RunLayout.at("results/p/e/r").diff_patch()).read_bytes()
    assert record["diff_bytes"] > environment.DIFF_CAP >= len(kept) > environment.DIFF_CAP - 8
    assert record["diff_note"] == (
        f"cut to its first {environment.DIFF_CAP} of {record['diff_bytes']} bytes"
    )
    # committed, the next fit is clean and removes the run's old patch
    git(git_tree, "commit", "-qam", "two")
    with job_record("results/p/e/r", "fit"):
        pass
    assert json.loads(job_record_path("results/p/e/r", "fit").read_text())["git"]["dirty"] is False
    assert not Path(RunLayout.at("results/p/e/r").diff_patch()).exists()


def test_a_job_whose_packages_differ_keeps_its_own_list(git_tree: Path) -> None:
    layout = RunLayout.at("results/p/e/r")
    with job_record(layout.folder, "fit"):
        pass
    # The fit ran elsewhere, with another torch: the test job's list is not the shared one.
    shared = Path(layout.packages())
    shared.write_text(shared.read_text().replace("\ntorch==", "\ntorch==0.0.1-elsewhere+"))
    with job_record(layout.folder, "test"):
        pass
    test = json.loads(job_record_path(layout.folder, "test").read_text())["packages"]
    assert test["file"] == "env/packages-test.txt"
    own = environment.read_packages(Path(layout.packages("test")).read_text())
    assert own["torch"] == importlib.metadata.version("torch")
    assert "elsewhere" in shared.read_text()  # the fit's list stays as it was


def test_capture_is_cheap(git_tree: Path) -> None:
    """In a git tree with a dirty file: a few milliseconds (two git calls and a diff)."""
    Path("big.txt").write_text("changed\n")
    environment.job_environment("results/p/e/r", "fit")  # imports psutil, first writes
    times = []
    for _ in range(5):
        start = time.perf_counter()
        environment.job_environment("results/p/e/r", "fit")
        times.append(time.perf_counter() - start)
    print(f"capture: median {sorted(times)[2] * 1000:.1f} ms")
    assert sorted(times)[2] < 0.25  # generous: the machine may be busy


def test_outside_a_git_tree_no_git_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert not environment.in_git_tree(tmp_path)
    facts = environment.job_environment("results/p/e/r", "fit")
    assert facts["git"] == {"commit": None, "dirty": None}


# -- process liveness: the pid and when its process started --------------------------------
@pytest.fixture
def sleeper() -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield process
    process.kill()
    process.wait()


def running_record(pid: int, started: float | None) -> dict:
    record = {"status": "running", "host": socket.gethostname(), "pid": pid}
    return record if started is None else {**record, "pid_started": started}


def test_a_live_pid_with_another_start_time_is_not_running(sleeper: subprocess.Popen) -> None:
    started = environment.process_start_time(sleeper.pid)
    assert started is not None
    assert process_alive(running_record(sleeper.pid, started), "x.done", set())
    # The pid lives, but it is not the process that wrote the record (the pid was reused).
    assert not process_alive(running_record(sleeper.pid, started - 30), "x.done", set())
    assert process_alive(running_record(sleeper.pid, None), "x.done", set())  # an older record
    sleeper.kill()
    sleeper.wait()
    assert not process_alive(running_record(sleeper.pid, started), "x.done", set())


def test_ls_reads_a_stale_running_record_as_interrupted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sleeper: subprocess.Popen
) -> None:
    monkeypatch.chdir(tmp_path)
    run = Run("p", "e", "r", "a run", "configs/c.py", ("fit",), {})
    path = job_record_path(run.folder, "fit")
    path.parent.mkdir(parents=True)
    started = environment.process_start_time(sleeper.pid)
    path.write_text(json.dumps(running_record(sleeper.pid, started)))
    assert job_status(run, "fit", None, set(), {}).status == "running"
    path.write_text(json.dumps(running_record(sleeper.pid, started - 30)))
    stale = job_status(run, "fit", None, set(), {})
    assert (stale.status, stale.reason) == ("failed", "interrupted: its process is gone")


def test_a_job_records_its_own_start_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with job_record("results/p/e/r", "fit"):
        record = json.loads(job_record_path("results/p/e/r", "fit").read_text())
        assert record["pid"] == os.getpid()
        assert record["pid_started"] == environment.process_start_time()
        assert process_alive(record, "x.done", set())
