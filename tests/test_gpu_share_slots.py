"""Several runs per GPU: jobs that ask for a share of a device (`gpus: 0.25`, the `gpu_share`
resource in sixtieths) share it through real file locks, fill devices evenly, and exclude
whole-device jobs. Tested on CPU with pretend devices, in other processes where the locks
must conflict (POSIX locks never conflict within one process).

Broken on purpose: with LOCK_EX instead of LOCK_SH for the device file of a share job
(`_try_lock` in dltemplate/jobs/gpu_slots.py), a second share of a device never fits, and
`test_four_quarters_fit_on_one_device_and_a_fifth_waits` fails at its second holder.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from dltemplate.errors import UserError
from dltemplate.jobs import gpu_slots
from tests.conftest import Project
from tests.test_gpu_slots import HOLDER, Holder, _slot_lines, env


@pytest.fixture(autouse=True)
def _release_after_test():
    yield
    gpu_slots.release()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path / "slots" / "local"


def waits(folder: Path, devices: str, count: int = 0, units: int | None = None) -> bool:
    """Whether another process that asks for `count` whole devices (or `units` of one) finds
    no room within a second."""
    what = str(count) if units is None else f"u{units}"
    result = subprocess.run(
        [sys.executable, "-c", HOLDER, what, devices, str(folder), "1"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
    )
    if result.returncode == 0:
        return False
    assert "TimeoutError" in result.stderr, result.stderr
    return True


def test_four_quarters_fit_on_one_device_and_a_fifth_waits(folder: Path) -> None:
    holders = [Holder(0, "0", folder, units=15) for _ in range(4)]
    assert [h.devices for h in holders] == [["0"]] * 4
    assert waits(folder, "0", units=15)
    assert waits(folder, "0", units=1)  # all 60 units are taken
    holders[0].stop(kill=True)  # SIGKILL: the kernel drops its locks, its units are free
    fifth = Holder(0, "0", folder, units=15, timeout=5)
    assert fifth.devices == ["0"]
    for holder in [*holders[1:], fifth]:
        holder.stop()


def test_shares_fill_devices_evenly(folder: Path) -> None:
    holders = [Holder(0, "0,1", folder, units=15) for _ in range(4)]
    assert [h.devices[0] for h in holders] == ["0", "1", "0", "1"]  # 2 + 2, not 4 + 0
    # The device with the most free units wins, whatever its place: 1 has 45 free, 0 has 30.
    holders[3].stop()
    again = Holder(0, "0,1", folder, units=15)
    assert again.devices == ["1"]
    for holder in [*holders[:3], again]:
        holder.stop()


def test_whole_and_share_jobs_exclude_each_other(folder: Path) -> None:
    share = Holder(0, "0", folder, units=15)
    assert waits(folder, "0", count=1)  # a whole-device job waits for the share job
    share.stop()
    whole = Holder(1, "0", folder)
    assert waits(folder, "0", units=15)  # and a share job for the whole-device job
    # With a second device, each goes where the other is not: a device held whole has no
    # free units, however few the shares on the other.
    assert Holder(0, "0,1", folder, units=15).devices == ["1"]
    whole.stop()


def test_mixed_shares_fill_a_device(folder: Path) -> None:
    half = Holder(0, "0", folder, units=30)
    quarters = [Holder(0, "0", folder, units=15) for _ in range(2)]
    assert [h.devices for h in [half, *quarters]] == [["0"]] * 3
    assert waits(folder, "0", units=1)
    half.stop(kill=True)
    assert not waits(folder, "0", units=30)  # the half that was killed is free again
    for holder in quarters:
        holder.stop()


def test_a_share_job_gets_one_device(tmp_path: Path) -> None:
    said: list[str] = []
    environ = env(tmp_path, CUDA_VISIBLE_DEVICES="0,1")
    busy = Holder(0, "0,1", tmp_path / "slots" / "local", units=30)
    assert gpu_slots.claim_gpus(None, environ, said.append, share_units=15) == ["1"]
    assert environ["CUDA_VISIBLE_DEVICES"] == "1"  # the emptier device
    assert "CUDA_VISIBLE_DEVICES=1 (locked in " in said[-1] and "15/60 of a GPU)" in said[-1]
    busy.stop()
    # `gpu` wins over `gpu_share`: a whole-device job also counts 60 units per device.
    environ = env(tmp_path, CUDA_VISIBLE_DEVICES="0,1")
    assert gpu_slots.claim_gpus(1, environ, said.append, share_units=60) == ["0"]
    with pytest.raises(UserError, match=r"asks for 15/60 of a GPU but no GPU is visible"):
        gpu_slots.claim_gpus(None, env(tmp_path, CUDA_VISIBLE_DEVICES=""), share_units=15)


@pytest.mark.slow
def test_two_half_gpu_fits_share_one_device(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Snakemake starts both fits (30 + 30 of the 60 `gpu_share` units that one GPU has), and
    both get the machine's one device; the test hook holds each fit after its first batch
    until both are there (were they run one after the other, the hook would time out)."""
    config = project.add_fit_hooks()
    project.write(
        "configs/projects/tiny.yaml",
        """\
        description: P
        experiments:
          exp:
            description: two one-epoch fits on half a GPU each
            resources: {cpus: 1, gpus: 0.5}
            runs:
              a: {description: R, config: CONFIG, jobs: [fit], overrides: {trainer.max_epochs: 1, task_wrapper.model.hidden_dim: 8}}
              b: {description: R, config: CONFIG, jobs: [fit], overrides: {trainer.max_epochs: 1, task_wrapper.model.hidden_dim: 8}}
        """.replace("CONFIG", config),
    )
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")  # a pretend machine with one GPU
    monkeypatch.setenv(gpu_slots.SLOTS_DIR_ENV, str(tmp_path / "slots"))
    monkeypatch.setenv("DLT_TEST_BARRIER", f"0,0,{tmp_path / 'barrier'},2")
    project.snakemake("--cores", "2", "--resources", "gpu=1", "gpu_share=60")
    got = _slot_lines(project, ["a", "b"])
    (dev_a, start_a, end_a), (dev_b, start_b, end_b) = got["a"], got["b"]
    assert dev_a == dev_b == "0"
    assert start_a < end_b and start_b < end_a  # at the same time
    log = project.path("results/tiny/exp/a/logs/fit.log").read_text()
    assert "30/60 of a GPU" in log
