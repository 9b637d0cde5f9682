"""GPU slots: each local GPU job gets its own devices through real file locks, and the job
scripts set CUDA_VISIBLE_DEVICES before torch starts. Tested on CPU by what each job received."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from dltemplate.errors import UserError
from dltemplate.jobs import gpu_slots
from tests.conftest import Project

HOLDER = textwrap.dedent(
    """\
    import sys
    from pathlib import Path
    from dltemplate.jobs.gpu_slots import acquire, acquire_share
    what, devices, folder = sys.argv[1], sys.argv[2].split(","), Path(sys.argv[3])
    timeout = float(sys.argv[4])
    if what.startswith("u"):  # u15: 15 units of one device
        got = [acquire_share(int(what[1:]), devices, folder, timeout=timeout, poll=0.05)]
    else:
        got = acquire(int(what), devices, folder, timeout=timeout)
    print(",".join(got), flush=True)
    sys.stdin.read()  # hold the locks until the test closes stdin (or kills us)
    """
)


class Holder:
    """Another process that holds GPU slots until it is stopped: `count` whole devices, or
    `units` of one device (a share job's)."""

    def __init__(
        self, count: int, devices: str, folder: Path, units: int | None = None, timeout: float = 30
    ) -> None:
        what = str(count) if units is None else f"u{units}"
        self.proc = subprocess.Popen(
            [sys.executable, "-c", HOLDER, what, devices, str(folder), str(timeout)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.devices = self.proc.stdout.readline().strip().split(",")

    def stop(self, kill: bool = False) -> None:
        if kill:
            self.proc.send_signal(signal.SIGKILL)
        else:
            self.proc.stdin.close()
        self.proc.wait(timeout=30)


@pytest.fixture(autouse=True)
def _release_after_test():
    yield
    gpu_slots.release()


def env(tmp_path: Path, **values: str) -> dict[str, str]:
    return {gpu_slots.SLOTS_DIR_ENV: str(tmp_path / "slots"), **values}


def test_visible_devices_come_from_cuda_visible_devices(tmp_path: Path) -> None:
    assert gpu_slots.visible_devices({"CUDA_VISIBLE_DEVICES": "2, 3"}) == ["2", "3"]
    assert gpu_slots.visible_devices({"CUDA_VISIBLE_DEVICES": ""}) == []


def test_a_job_gets_what_it_asks_for(tmp_path: Path) -> None:
    said: list[str] = []
    environ = env(tmp_path)
    assert gpu_slots.claim_gpus(None, environ, said.append) is None
    assert "CUDA_VISIBLE_DEVICES" not in environ  # did not say: left alone
    assert gpu_slots.claim_gpus(0, environ, said.append) == []
    assert environ["CUDA_VISIBLE_DEVICES"] == ""  # asked for none: sees none
    # Exactly what it asked for (SLURM's allocation): kept as given, no locks.
    environ = env(tmp_path, CUDA_VISIBLE_DEVICES="5,7", SLURM_JOB_ID="42")
    assert gpu_slots.claim_gpus(2, environ, said.append) == ["5", "7"]
    assert "(SLURM job 42): CUDA_VISIBLE_DEVICES=5,7 (as given)" in said[-1]
    assert not (tmp_path / "slots").exists()
    with pytest.raises(UserError, match=r"asks for 3 GPU\(s\) but only 2 are visible"):
        gpu_slots.claim_gpus(3, env(tmp_path, CUDA_VISIBLE_DEVICES="0,1"), said.append)


def test_slots_are_exclusive_between_processes(tmp_path: Path) -> None:
    folder = tmp_path / "slots" / "local"
    holder = Holder(1, "0,1,2", folder)
    assert holder.devices == ["0"]
    environ = env(tmp_path, CUDA_VISIBLE_DEVICES="0,1,2")
    assert gpu_slots.claim_gpus(2, environ, print) == ["1", "2"]
    assert environ["CUDA_VISIBLE_DEVICES"] == "1,2"
    # All three taken: a third process waits, and gives up after its timeout.
    timeout = subprocess.run(
        [
            sys.executable,
            "-c",
            "from pathlib import Path; from dltemplate.jobs.gpu_slots import acquire; "
            f"acquire(1, ['0', '1', '2'], Path({str(folder)!r}), timeout=1)",
        ],
        capture_output=True,
        text=True,
    )
    assert "TimeoutError" in timeout.stderr
    holder.stop(kill=True)  # SIGKILL: the kernel drops its lock, no stale slot
    gpu_slots.release(["2"])
    second = Holder(2, "0,1,2", folder)
    assert second.devices == ["0", "2"]
    second.stop()


def _slot_lines(project: Project, runs: list[str]) -> dict[str, tuple[str, float, float]]:
    """run -> (CUDA_VISIBLE_DEVICES its fit got, when it got it, when fit.done was written)."""
    found = {}
    for run in runs:
        log = project.path(f"results/tiny/exp/{run}/logs/fit.log").read_text()
        match = re.search(
            r"GPU slots: CUDA_VISIBLE_DEVICES=(\S+) \(locked in .*\) at ([\d.]+)", log
        )
        assert match, log
        done = project.path(f"results/tiny/exp/{run}/fit.done").stat().st_mtime
        found[run] = (match.group(1), float(match.group(2)), done)
    return found


@pytest.mark.slow
def test_concurrent_gpu_jobs_get_their_own_devices(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A test hook (tests/fit_hooks.py) holds each fit after its first batch until both are
    there, so the two fits hold their slots at the same time, whatever the load.

    Broken on purpose: with `acquire` (dltemplate/jobs/gpu_slots.py) closing its lock files as
    soon as it has chosen (locks not held for the job's duration), both fits get the same device
    (the holder's device 0, then free too) and `dev_a != dev_b` fails."""
    config = project.add_fit_hooks()
    project.write(
        "configs/projects/tiny.yaml",
        """\
        description: P
        experiments:
          exp:
            description: two one-epoch fits on a GPU each
            resources: {cpus: 1, gpus: 1}
            runs:
              a: {description: R, config: CONFIG, jobs: [fit], overrides: {trainer.max_epochs: 1, task_wrapper.model.hidden_dim: 8}}
              b: {description: R, config: CONFIG, jobs: [fit], overrides: {trainer.max_epochs: 1, task_wrapper.model.hidden_dim: 8}}
        """.replace("CONFIG", config),
    )
    # Three GPUs on this pretend machine; device 0 is busy with someone else's job.
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2")
    monkeypatch.setenv(gpu_slots.SLOTS_DIR_ENV, str(tmp_path / "slots"))
    monkeypatch.setenv("DLT_TEST_BARRIER", f"0,0,{tmp_path / 'barrier'},2")
    holder = Holder(1, "0", tmp_path / "slots" / "local")
    try:
        project.snakemake("--cores", "2", "--resources", "gpu=2")
    finally:
        holder.stop()
    got = _slot_lines(project, ["a", "b"])
    (dev_a, start_a, end_a), (dev_b, start_b, end_b) = got["a"], got["b"]
    assert start_a < end_b and start_b < end_a  # they ran at the same time (the barrier)
    assert dev_a != dev_b
    assert {got["a"][0], got["b"][0]} <= {"1", "2"}  # never the busy device 0, one each
    assert len(list((tmp_path / "barrier").iterdir())) == 2
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "0,1,2"  # the jobs changed only their own
