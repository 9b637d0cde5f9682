"""Layer 1 and 4: a read-only or immutable registry or run folder stops the command with one
line naming the place and what to do, exit status 1, and nothing changed (issue #20, point 8).

As root, `chmod a-w` stops nothing (root writes anyway), so the tests make the place immutable
with `chattr +i`, which stops root too; they skip only where root cannot set that flag.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Project

ADD_RUN = ("add-run", "-p", "tiny", "-e", "exp", "-n", "new", "-d", "D", "-c")


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[None]:
    """`path` cannot be written by this user (or changed, nor its folder's entries) inside."""
    if os.geteuid() != 0:
        mode = path.stat().st_mode
        path.chmod(mode & ~0o222)
        try:
            yield
        finally:
            path.chmod(mode)
        return
    flag = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True)
    if flag.returncode != 0:
        pytest.skip(f"running as root, and chattr +i fails here ({flag.stderr.strip()})")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def one_error_line(output: str) -> str:
    assert "Traceback" not in output, output
    lines = [line for line in output.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1, output
    return lines[0]


@pytest.mark.parametrize("place", ["configs/projects/tiny.yaml", "configs/projects"])
def test_a_read_only_registry_is_named_and_kept(project: Project, place: str) -> None:
    registry = project.path("configs/projects/tiny.yaml")
    before = registry.read_text()
    with read_only(project.path(place)):
        result = project.main(*ADD_RUN, "configs/digits_mlp.py", check=False)
    assert result.returncode == 1, result.stdout
    assert one_error_line(result.stderr) == (
        f"Error: Registry {place} cannot be written: it is read-only or immutable; make it "
        f"writable (chmod u+w {place}, or chattr -i as root) and run the command again; "
        "nothing was changed"
    )
    assert registry.read_text() == before
    assert [p.name for p in registry.parent.iterdir() if p.name.startswith(".edit-")] == []


def test_a_read_only_run_folder_stops_before_any_job(project: Project) -> None:
    # A finished run's records: Snakemake must remove test.done to rerun the test (-R test).
    run = project.path("results/tiny/exp/mlp")
    run.mkdir(parents=True)
    for job in ("fit", "test", "predict"):
        (run / f"{job}.done").write_text("{}\n")
    project.snakemake("--cores", "1", "--touch", "results/tiny/exp/mlp/predict.done")
    target = "results/tiny/exp/mlp/test.done"
    with read_only(run):
        result = project.snakemake("--cores", "1", "-R", "test", target, check=False)
    assert result.returncode == 1, result.stderr
    assert one_error_line(result.stderr) == (
        "Error: Cannot write results/tiny/exp/mlp: it is read-only or immutable; make it "
        "writable (chmod u+w results/tiny/exp/mlp, or chattr -i as root) and run again; "
        "no job was started"
    )
    assert (run / "test.done").read_text() == "{}\n"
    assert not (run / "logs").exists()
    # A finished run kept read-only is no obstacle when nothing of it has to run.
    with read_only(run):
        project.snakemake("--cores", "1", target)
