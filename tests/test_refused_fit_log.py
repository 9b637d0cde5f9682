"""Layer 4: a fit refused by the run lock keeps the log of the fit that holds it (issue #20,
point 11).

An orphaned fit (its Snakemake killed, the job still running) holds `fit.lock`; a second
Snakemake reruns the fit, which is refused. Snakemake has removed `logs/fit.log` for that job;
the refusal goes to `logs/fit.refused-<n>.log`, and `logs/fit.log` names the orphan's attempt
log again, which then finishes the run: `fit.done` and the log that made it agree.
Held open by the test hook DLT_TEST_HOLD (tests/fit_hooks.py), never by a clock.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from dltemplate.jobs.resume import RunLockedError, run_lock
from tests.conftest import BIN, Project
from tests.test_errors import registry_with_runs

pytestmark = pytest.mark.slow

RUN = "results/tiny/exp/held"
RUNS = """\
held:
  description: held open in epoch 0 by the test hook
  config: {config}
  jobs: [fit]
  overrides: {{trainer.max_epochs: 2, task_wrapper.model.hidden_dim: 16, data_wrapper.batch_size: 256}}
"""


def wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + 300  # a bound for a broken test, not a timing assumption
    while not condition():
        assert time.monotonic() < deadline, f"waited 300 s for {what}"
        time.sleep(0.1)


def unlocked(run_dir: Path) -> bool:
    try:
        with run_lock(run_dir):
            return True
    except RunLockedError:
        return False


def test_a_refused_fit_keeps_the_running_fits_log(project: Project) -> None:
    runs = RUNS.format(config=project.add_fit_hooks())
    project.write("configs/projects/tiny.yaml", registry_with_runs(runs))
    target, hold = f"{RUN}/fit.done", project.path("release")
    with open(project.path("first.out"), "w") as out:
        first = subprocess.Popen(
            [str(BIN / "snakemake"), "--cores", "1", target],
            cwd=project.root,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "DLT_TEST_HOLD": f"0,2,{hold}"},
        )
    held = Path(f"{hold}.held")
    try:
        wait_for(held.exists, "the fit to be held")
        first.send_signal(signal.SIGKILL)  # Snakemake dies; its fit job goes on, an orphan
        first.wait(timeout=60)
        project.snakemake("--unlock")

        second = project.snakemake("--cores", "1", target, check=False)
        assert second.returncode == 1
        logs = project.path(f"{RUN}/logs")
        # logs/fit.log is the orphan's attempt again, as it writes it
        assert (logs / "fit.log").samefile(logs / "fit.attempt-1.log")
        assert "Error:" not in (logs / "fit.log").read_text()
        refusal = (
            f"Error: Run {RUN} is being fitted by another process (pid {held.read_text()} on host"
        )
        assert refusal in second.stderr
        assert f"this refusal is logged in {RUN}/logs/fit.refused-1.log" in second.stderr
        assert (logs / "fit.refused-1.log").read_text().splitlines()[-1].startswith(refusal)

        hold.touch()  # the orphan goes on and finishes the run
        wait_for(lambda: unlocked(project.path(RUN)), "the orphaned fit to end")
    finally:
        hold.touch()
    record = json.loads(project.path(target).read_text())
    assert record["epochs"] == 2
    log = (logs / "fit.log").read_text()
    assert "Fit attempt 1." in log and "Error:" not in log
    assert sorted(p.name for p in logs.iterdir()) == [
        "fit.attempt-1.log",
        "fit.log",
        "fit.refused-1.log",
    ]
