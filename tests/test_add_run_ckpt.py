"""`main.py add-run --ckpt PATH|RUN`: a test-and-predict run of an existing checkpoint (a file
under results/ or data/, or another run's best), each such run its own point in the summary,
never averaged with another run of the same config and overrides; a bad --ckpt is one line
and writes nothing."""

from __future__ import annotations

import csv
import shutil

import pytest

ADD = ("add-run", "-p", "tiny", "-e", "exp", "-c", "configs/digits_mlp.py")
SAME = ("--set", "task_wrapper.model.hidden_dim=32")


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_runs_of_existing_checkpoints(project) -> None:
    run = "results/tiny/exp/mlp"
    project.snakemake("--cores", "1", f"{run}/fit.done")
    project.main(
        *ADD, "-n", "again", "-d", "its best, tested again", "--ckpt", "tiny/exp/mlp", *SAME
    )
    (project.root / "data").mkdir(exist_ok=True)
    shutil.copy(project.path(f"{run}/checkpoints/best.ckpt"), project.path("data/copy.ckpt"))
    project.main(*ADD, "-n", "copy", "-d", "a copy of it", "--ckpt", "data/copy.ckpt", *SAME)
    registry = project.path("configs/projects/tiny.yaml").read_text()
    assert f"ckpt: {run}/checkpoints/best.ckpt" in registry and "ckpt: data/copy.ckpt" in registry
    assert registry.count("jobs: [test, predict]") == 2, registry

    project.snakemake("--cores", "1", "results/tiny/exp/summary.csv")
    with open(project.path("results/tiny/exp/summary_points.csv")) as file:
        points = list(csv.DictReader(file))
    assert sorted(p["runs"] for p in points) == ["again", "copy", "mlp"], points
    assert {p["n"] for p in points} == {"1"}


def test_a_bad_checkpoint_is_one_line_and_writes_nothing(project) -> None:
    before = project.path("configs/projects/tiny.yaml").read_text()
    for given, says in (
        (
            "tiny/exp/mlp",
            "ckpt results/tiny/exp/mlp/checkpoints/best.ckpt does not exist; fit that run first",
        ),
        ("/etc/passwd", "must lie under results/ or data/"),
        ("data/none.ckpt", "does not exist; give an existing checkpoint file"),
    ):
        result = project.main(*ADD, "-n", "x", "-d", "x", "--ckpt", given, check=False)
        assert result.returncode == 1, result
        lines = result.stderr.strip().splitlines()
        assert (
            len(lines) == 1 and lines[0].startswith(f"Error: --ckpt {given}: ") and says in lines[0]
        ), lines
    assert project.path("configs/projects/tiny.yaml").read_text() == before
