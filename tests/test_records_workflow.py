"""Layer 4, for real: concurrent `add-run` commands, then `exec` running 8 tiny runs with -j4,
then every record checked, and `ls` reading done, stale and failed from the run folders."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import BIN, Project, make_project

REGISTRY = """\
# A comment that the commands must keep.
description: A tiny project for tests  # inline, kept too
experiments:
  exp:
    description: Eight one-epoch runs  # of a tiny MLP
"""
# One epoch of two batches of a 8-unit MLP: the jobs cost their imports, not their training.
TINY = (
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=2",
    "trainer.limit_val_batches=1",
    "task_wrapper.model.hidden_dim=8",
)


def sets(*extra: str) -> list[str]:
    return [x for value in (*TINY, *extra) for x in ("--set", value)]


def ls_json(project: Project, *args: str) -> dict:
    return json.loads(project.main("ls", "-p", "tiny", "-e", "exp", "--json", *args).stdout)


@pytest.mark.slow
def test_concurrent_add_run_then_exec_j4_records(tmp_path: Path) -> None:
    project = make_project(tmp_path / "proj", REGISTRY)

    # 8 add-run commands at once. --no-check skips building the config (a torch import per
    # process, seconds each; tests/test_cli_commands.py covers the check), not the lock.
    procs = []
    for i in range(1, 9):
        jobs = "fit,test,predict" if i == 1 else "fit"  # r1's test and predict run side by side
        command = ["add-run", "-p", "tiny", "-e", "exp", "-n", f"r{i}", "-d", f"run {i}"]
        command += ["-c", "configs/digits_mlp.py", "-r", jobs, "--no-check", *sets(f"seed={i}")]
        procs.append(
            subprocess.Popen(
                [str(BIN / "python"), "main.py", *command],
                cwd=project.root,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    for proc in procs:
        output = proc.communicate(timeout=300)[0]
        assert proc.returncode == 0, output
    text = project.path("configs/projects/tiny.yaml").read_text()
    assert "# A comment that the commands must keep." in text
    assert "# inline, kept too" in text and "# of a tiny MLP" in text
    assert all(f"      r{i}:\n" in text for i in range(1, 9))

    # exec of a declared run, with -j4 and an extra target after -- that pulls in all 8.
    started = time.time()
    result = project.main(
        *("exec", "-p", "tiny", "-e", "exp", "-n", "r8", "-j", "4"),
        *("--", "results/tiny/project.json"),
    )
    print(f"exec -j4 over 8 runs: {time.time() - started:.1f}s")
    assert "Run tiny/exp/r8 is declared" in result.stderr and "--jobs 4" in result.stderr

    record = json.loads(project.path("results/tiny/project.json").read_text())
    runs = record["experiments"]["exp"]["runs"]
    assert record["description"] == "A tiny project for tests" and record["created"] is None
    assert sorted(runs) == [f"r{i}" for i in range(1, 9)]
    for i in range(1, 9):
        folder = project.path(f"results/tiny/exp/r{i}")
        run = json.loads((folder / "run.json").read_text())
        assert runs[f"r{i}"] == run
        assert run["description"] == f"run {i}" and run["created"].startswith("20")
        assert run["config"] == "configs/digits_mlp.py"
        assert run["overrides"]["seed"] == i and run["overrides"]["trainer.max_epochs"] == 1
        expected = ["fit", "test", "predict"] if i == 1 else ["fit"]
        assert run["jobs"] == expected and list(run["records"]) == expected
        for job, job_record in run["records"].items():
            assert job_record == json.loads((folder / f"records/{job}.json").read_text())
            assert job_record["status"] == "done" and job_record["job"] == job
            assert job_record["started"] <= job_record["ended"]
            facts = {"host", "pid", "pid_started", "git", "versions", "packages", "cpu"}
            assert facts | {"gpus", "snakemake", "slurm_job_id"} <= set(job_record)
            assert set(job_record["versions"]) == {
                *("python", "dltemplate", "torch", "lightning", "snakemake"),
                *("cuda", "cudnn"),  # torch's, added at the job's end
            }
    assert 0 <= runs["r1"]["metrics"]["test/acc"] <= 1

    # The same command again: the run matches its declaration, and nothing is left to do.
    again = project.main("exec", "-p", "tiny", "-e", "exp", "-n", "r8", "-j", "1")
    assert "Nothing to be done" in again.stdout + again.stderr

    states = {r["name"]: r for r in ls_json(project)["runs"]}
    assert states["r1"]["jobs"] == {
        job: {"status": "done", "started": rec["started"], "ended": rec["ended"]}
        for job, rec in runs["r1"]["records"].items()
    }
    assert all(states[f"r{i}"]["jobs"]["fit"]["status"] == "done" for i in range(1, 9))
    assert states["r1"]["main_metric"]["name"] == "test/acc"

    # An edited override makes the run stale (Snakemake's params trigger), and only that run.
    registry = project.path("configs/projects/tiny.yaml")
    registry.write_text(registry.read_text().replace("seed: 1\n", "seed: 11\n"))
    states = {r["name"]: r for r in ls_json(project)["runs"]}
    assert {j: s["status"] for j, s in states["r1"]["jobs"].items()} == dict.fromkeys(
        ("fit", "test", "predict"), "stale"
    )
    assert states["r1"]["jobs"]["fit"]["reason"] == "params changed"
    assert states["r2"]["jobs"]["fit"]["status"] == "done"
