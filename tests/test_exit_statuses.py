"""Every exit status that README.md and docs/*.md promise, triggered for real and checked (issue
#20, point 12). What the docs say, and where:

- a mistake the user can fix: exit status 1 and one line `Error: ...` (docs/errors.md, and
  docs/configs.md for `main.py hparams`, a `--set` without `=` too); Snakemake stopped by one
  while it reads the workflow: 1 as well (docs/errors.md);
- a command line that `main.py` cannot parse (an unknown job type in `-r`, a debug mode or
  count that does not exist): 2, argparse's status (docs/errors.md);
- `main.py debug --mode overfit`: 0 whether the model fits or not (docs/cli.md);
- `main.py diff` and `reproduce` of a run without a folder: 1 (docs/cli.md); `reproduce` exits 0
  when the metrics match and 1 when they differ, which tests/test_reproduce.py checks on the
  full runs it needs;
- `main.py exec`: Snakemake's exit status (docs/cli.md), 128 + N when signal N ended Snakemake;
- a second Snakemake on the same results: 1 (docs/errors.md);
- a fit stopped by SIGTERM or the first Ctrl-C: 143, after saving last.ckpt
  (docs/reruns-and-resume.md).
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import time
from pathlib import Path

import pytest

from dltemplate.jobs.resume import RunLockedError, run_lock
from tests.conftest import BIN, Project, make_project
from tests.test_errors import registry_with_runs

HOOKED = """\
{name}:
  description: a short fit of the hooked MLP, held open or stopped by the test hooks
  config: configs/hooked_mlp.py
  jobs: [fit]
  overrides: {{trainer.max_epochs: 2, task_wrapper.model.hidden_dim: 16, data_wrapper.batch_size: 256}}
"""
RUNS = (
    "mlp: {description: a declared run, config: configs/digits_mlp.py}\n"
    "gone: {description: its config does not exist, config: configs/nope.py}\n"
    + "".join(HOOKED.format(name=name) for name in ("held", "stopped", "ctrl_c"))
)
ADD = "add-run -p tiny -e exp -n new -d D"
EXEC = "exec -p tiny -e exp -n mlp"
DEBUG = "debug -p tiny -e exp -n held"

# (where the docs promise it, the command, its exit status, a piece of its one line)
MAIN_CASES = [
    ("configs.md", "hparams -c configs/digits_mlp.py --set foo", 1, "has no '='"),
    ("configs.md", "hparams -c configs/digits_mlp.py --set task_wrapper.lr=fast", 1, "float"),
    ("configs.md", "hparams -c configs/nope.py", 1, "configs/nope.py does not exist"),
    (
        "errors.md",
        f"{ADD} -c configs/digits_mlp.py --set task_wrapper.model.hiden_dim=3",
        1,
        "closest: task_wrapper.model.hidden_dim",
    ),
    ("errors.md", f"{ADD} -c ../outside.py", 1, "must be a relative path under configs/"),
    (
        "errors.md",
        "add-run -p tiny -e exp -n 'a b' -d D -c configs/digits_mlp.py",
        1,
        "Invalid run name 'a b'",
    ),
    ("errors.md", "show tiny/exp/nope", 1, "No run tiny/exp/nope"),
    ("errors.md", f"{ADD} -c configs/digits_mlp.py -r train", 2, "unknown job type(s) train"),
    ("errors.md", f"{DEBUG} --mode slow", 2, "argument --mode: invalid choice: 'slow'"),
    ("errors.md", f"{DEBUG} --mode fast --batches 0", 2, "at least 1, got '0'"),
    ("errors.md", "lr-find -p tiny -e exp -n held --min-lr 0", 2, "above 0, got '0'"),
    ("cli.md", f"{DEBUG} --mode fast --set task_wrapper.lr=fast", 1, "expected float"),
    ("cli.md", f"{DEBUG} --mode overfit --epochs 1", 0, "the model did not fit"),
    ("cli.md", "diff tiny/exp/nope tiny/exp/mlp", 1, "No run folder results/tiny/exp/nope"),
    ("cli.md", "reproduce tiny/exp/nope", 1, "No run folder results/tiny/exp/nope"),
    ("cli.md", f"{EXEC} -- --no-such-flag", 2, "unrecognized arguments: --no-such-flag"),
    ("cli.md", f"{EXEC} -- --dry-run", 0, ""),
]
SNAKEMAKE_CASES = [
    ("errors.md", "-n --config archive_format=tar", 1, "at archive_format: 'tar' is not one of"),
    ("errors.md", "-n results/tiny/exp/gone/fit.done", 1, "config configs/nope.py does not exist"),
]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    project = make_project(tmp_path_factory.mktemp("exits") / "proj", registry_with_runs(RUNS))
    project.add_fit_hooks()
    project.write("../outside.py", "raise SystemExit('imported')\n")  # refused before import
    return project


def check(result: subprocess.CompletedProcess, status: int, message: str) -> None:
    output = result.stdout + result.stderr
    assert result.returncode == status, output
    assert message in output, output
    if status == 1:  # a user's mistake: one line, no traceback
        assert "Traceback" not in output, output
        assert [line for line in output.splitlines() if line.startswith("Error:")], output


@pytest.mark.parametrize(("doc", "command", "status", "message"), MAIN_CASES)
def test_main_py_exits_as_documented(
    project: Project, doc: str, command: str, status: int, message: str
) -> None:
    registry = project.path("configs/projects/tiny.yaml").read_text()
    check(project.main(*shlex.split(command), check=False), status, message)
    assert project.path("configs/projects/tiny.yaml").read_text() == registry


@pytest.mark.parametrize(("doc", "command", "status", "message"), SNAKEMAKE_CASES)
def test_snakemake_exits_as_documented(
    project: Project, doc: str, command: str, status: int, message: str
) -> None:
    check(project.snakemake(*shlex.split(command), check=False), status, message)


def start_exec(project: Project, run: str, hold: Path) -> subprocess.Popen:
    """`main.py exec` of `run`, its fit held open after batch 2 until `hold` exists, in its
    own process group (as a terminal's foreground job); its output in exec.out."""
    with open(project.path("exec.out"), "w") as out:  # not a pipe: an orphan would hold it
        return subprocess.Popen(
            [str(BIN / "python"), "main.py", "exec", "-p", "tiny", "-e", "exp", "-n", run],
            cwd=project.root,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "DLT_TEST_HOLD": f"0,2,{hold}"},
        )


def wait_for(path: Path, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 300  # a bound for a broken test, not a timing assumption
    while not path.exists():
        assert process.poll() is None and time.monotonic() < deadline, "the fit was not held"
        time.sleep(0.1)


@pytest.mark.slow
def test_exec_exits_with_snakemakes_status_and_a_second_snakemake_with_1(
    project: Project,
) -> None:
    """Snakemake killed by SIGKILL under `main.py exec`: exec exits 137 (128 + 9), as a shell
    says, not Python's 247. Meanwhile a second Snakemake is locked out with status 1."""
    hold = project.path("release")
    exec_ = start_exec(project, "held", hold)
    held = Path(f"{hold}.held")
    try:
        wait_for(held, exec_)
        second = project.snakemake("--cores", "1", "results/tiny/exp/held/fit.done", check=False)
        check(second, 1, "cannot be locked")
        snakemake = Path(f"/proc/{exec_.pid}/task/{exec_.pid}/children").read_text().split()
        assert len(snakemake) == 1, snakemake
        os.kill(int(snakemake[0]), signal.SIGKILL)
        exec_.wait(timeout=120)
        assert exec_.returncode == 128 + signal.SIGKILL, project.path("exec.out").read_text()
    finally:
        if held.exists():  # the orphaned fit: kill it, and wait until its lock is free
            os.kill(int(held.read_text()), signal.SIGKILL)
            wait_for_unlocked(project.path("results/tiny/exp/held"))
        if exec_.poll() is None:
            exec_.kill()
    project.snakemake("--unlock")


def wait_for_unlocked(run_dir: Path) -> None:
    deadline = time.monotonic() + 300
    while True:
        try:
            with run_lock(run_dir):
                return
        except RunLockedError:
            assert time.monotonic() < deadline, f"{run_dir} stayed locked"
            time.sleep(0.1)


@pytest.mark.slow
def test_a_fit_stopped_by_sigterm_exits_143(project: Project) -> None:
    """SIGTERM (a cluster's time limit) stops the fit after the running batch, with last.ckpt
    saved and no fit.done: the job exits 143 (128 + SIGTERM), Snakemake 1."""
    run = project.path("results/tiny/exp/stopped")
    result = project.snakemake(
        "--cores",
        "1",
        "results/tiny/exp/stopped/fit.done",
        check=False,
        env={"DLT_TEST_SIGNAL": "0,2,SIGTERM"},
    )
    assert result.returncode == 1, result.stderr  # Snakemake's: a job failed
    assert "returned non-zero exit status 143." in result.stderr, result.stderr
    assert (run / "checkpoints" / "last.ckpt").is_file() and not (run / "fit.done").exists()


@pytest.mark.slow
def test_ctrl_c_under_exec_stops_the_fit_with_143_and_exec_with_snakemakes_1(
    project: Project,
) -> None:
    """The first Ctrl-C in the terminal reaches exec, Snakemake and the fit: the fit stops
    after its batch (143), Snakemake exits 1, and exec with it, without a traceback."""
    hold = project.path("release-ctrl-c")
    exec_ = start_exec(project, "ctrl_c", hold)
    try:
        wait_for(Path(f"{hold}.held"), exec_)
        os.killpg(exec_.pid, signal.SIGINT)  # Ctrl-C in the terminal
        exec_.wait(timeout=120)
    finally:
        hold.touch()
        if exec_.poll() is None:
            exec_.kill()
    output = project.path("exec.out").read_text()
    assert exec_.returncode == 1, output
    assert "returned non-zero exit status 143." in output, output
    assert "Traceback" not in output and "KeyboardInterrupt" not in output, output
    assert project.path("results/tiny/exp/ctrl_c/checkpoints/last.ckpt").is_file()
