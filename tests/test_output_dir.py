"""`output_dir` (the original design's OUTPUT_DIR): every results path follows it, relative or
absolute, for Snakemake and main.py alike; bad places are refused in one line.

Broken on purpose: a rule or a job that spells `results/` by hand writes beside the scratch
folder, and the file checks below fail.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import Project


def errors(result) -> list[str]:
    return [
        line for line in (result.stdout + result.stderr).splitlines() if line.startswith("Error:")
    ]


@pytest.mark.parametrize(
    ("output_dir", "message"),
    [
        ("configs/results", "lies inside the project's configs/"),
        ("dltemplate/out", "lies inside the project's dltemplate/"),
        (".", "is the project folder itself"),
        ("Snakefile/results", "cannot be created or written"),
    ],
)
def test_a_bad_output_dir_is_refused_in_one_line(
    project: Project, output_dir: str, message: str
) -> None:
    result = project.snakemake("-n", "--config", f"output_dir={output_dir}", check=False)
    assert result.returncode != 0
    lines = errors(result)
    assert len(lines) == 1 and message in lines[0], result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert not project.path("results").exists()


@pytest.mark.slow
def test_every_results_path_follows_output_dir(project: Project, tmp_path: Path) -> None:
    scratch = tmp_path / "scratch" / "results"  # absolute, outside the project
    run = f"{scratch}/tiny/exp/mlp"
    # targets first: --config takes every name=value after it
    targets = (f"{run}/run.json", f"{scratch}/tiny/exp/summary.csv")
    project.snakemake("--cores", "2", *targets, "--config", f"output_dir={scratch}")
    for name in (
        "fit.done",
        "test.done",
        "predict.done",
        "run.json",
        "hparams.yaml",
        "checkpoints/best.ckpt",
        "records/fit.json",
        "plots/learning_curves.png",
    ):
        assert Path(run, name).is_file(), name
    assert Path(scratch, "tiny/exp/summary.csv").is_file()
    assert not project.path("results").exists()  # nothing beside it
    # a rerun at the same place does nothing; main.py reads output_dir from workflow.yaml
    again = project.snakemake("-n", "--cores", "2", *targets, "--config", f"output_dir={scratch}")
    assert "Nothing to be done" in again.stdout + again.stderr
    workflow = project.path("configs/workflow.yaml")
    workflow.write_text(
        workflow.read_text().replace("output_dir: results", f"output_dir: {scratch}")
    )
    listing = project.main("ls", "-p", "tiny", "-e", "exp", "--json").stdout
    assert '"status": "done"' in listing


@pytest.mark.slow
def test_a_relative_output_dir_works_from_the_command_line(project: Project) -> None:
    target = "out/results/tiny/exp/mlp/fit.done"
    project.snakemake("--cores", "1", target, "--config", "output_dir=out/results")
    assert project.path("out/results/tiny/exp/mlp/checkpoints/last.ckpt").is_file()
    assert not project.path("results").exists()
