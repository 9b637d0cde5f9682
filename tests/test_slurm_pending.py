"""Layer 1: which SLURM pending reasons never clear, and the one line that names a stuck job
(tests/test_slurm.py meets it on a real cluster)."""

from __future__ import annotations

import pytest

from dltemplate.workflow.slurm_pending import PendingJob, describe, why_stuck


@pytest.mark.parametrize(
    "reason",
    [
        "PartitionConfig",
        "PartitionTimeLimit",
        "ReqNodeNotAvail, UnavailableNodes:n[1-4]",
        "QOSMaxCpuPerJobLimit",
        "AssocMaxWallDurationPerJobLimit",
        "InvalidAccount",
    ],
)
def test_reasons_that_never_clear(reason: str) -> None:
    assert why_stuck(reason)


@pytest.mark.parametrize(
    "reason", ["Resources", "Priority", "Dependency", "QOSMaxJobsPerUserLimit", "BeginTime", ""]
)
def test_reasons_that_clear_by_waiting(reason: str) -> None:
    assert why_stuck(reason) is None


def test_the_line_names_the_run_its_request_and_the_largest_node() -> None:
    job = PendingJob("71", "/p", "gpu", "64", "4000M", "2:00:00", "gres/gpu:2", "PartitionConfig")
    line = describe(job, "p/e/r", (32, 190000))
    assert line.startswith("SLURM job 71 (run p/e/r) cannot start: PartitionConfig, it asks ")
    assert "(64 CPUs, 4000M memory, time 2:00:00, gres/gpu:2, in partition gpu, whose " in line
    assert "largest node has 32 CPUs and 190000M memory)" in line and "\n" not in line
    job = PendingJob("7", "/p", "cpu", "4", "1G", "10:00", "N/A", "BadConstraints")
    unknown = describe(job, None, None)
    assert "(a job of this workflow)" in unknown and "N/A" not in unknown
