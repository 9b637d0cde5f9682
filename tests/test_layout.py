"""The one run layout: the paths the rules declare and the files the jobs write come from it.

Broken on purpose: a rule that spells a path by hand ("results/{proj}/{exp}/{run}/fit.out") or a
job that writes beside the layout (`run_dir / "extra.json"`) fails these tests.
"""

from __future__ import annotations

import re

import pytest

from dltemplate.layout import (
    EXPORT_FILES,
    JOB_TYPES,
    ExperimentLayout,
    ProjectLayout,
    RunLayout,
)
from tests.conftest import RUN_PLOTS, TINY_REGISTRY, Project


def declare_every_job(project: Project) -> None:
    """The tiny run declares every job type (validate is not among the default jobs)."""
    config = "        config: configs/digits_mlp.py\n"
    jobs = f"        jobs: [{', '.join(JOB_TYPES)}]\n"
    project.write("configs/projects/tiny.yaml", TINY_REGISTRY.replace(config, config + jobs))


def declared_paths(project: Project, *targets: str) -> set[str]:
    """Every output and log path of the jobs a dry run of `targets` lists."""
    dry = project.snakemake("-n", "--cores", "1", *targets).stdout
    paths: set[str] = set()
    for line in dry.splitlines():
        match = re.match(r"\s+(output|log): (.*)", line)
        if match:
            paths.update(p.strip() for p in match.group(2).split(","))
    return paths


def test_rules_declare_the_layouts_paths(project: Project) -> None:
    run = RunLayout.of("tiny", "exp", "mlp")
    exp = ExperimentLayout.of("tiny", "exp")
    proj = ProjectLayout.of("tiny")
    declare_every_job(project)
    declared = declared_paths(project, "all")
    from_layout = {
        *(run.done(job) for job in JOB_TYPES),
        *(run.log(job) for job in (*JOB_TYPES, "run_record")),
        run.predictions,
        run.export,
        run.run_json,
        *(run.plot(name) for name in RUN_PLOTS),
        exp.summary_csv,
        *(exp.file(n) for n in ("summary_points.csv", "summary.md", "summary.png")),
        exp.comparison_png,
        exp.file("plots/summary.html"),
        *(exp.file(f"logs/{job}.log") for job in ("summary", "plot_comparison")),
        proj.summary_csv,
        proj.file("summary.md"),
        proj.project_json,
        *(proj.file(f"logs/{job}.log") for job in ("summary", "project_record")),
    }
    assert declared == from_layout


@pytest.mark.slow
def test_jobs_write_only_where_the_layout_says(project: Project) -> None:
    run = RunLayout.of("tiny", "exp", "mlp")
    declare_every_job(project)
    project.snakemake("--cores", "2", run.run_json)
    folder = project.path(run.folder)
    # Every entry of the run folder is one the layout names (files, or folders it owns).
    named = {
        *(run.done(job) for job in JOB_TYPES),
        run.run_json,
        run.hparams,
        *run.archives,
        run.predictions,
        run.export,
        run.checkpoints,
        run.lock,
        run.logs,
        run.metrics("fit"),
        run.records,
        run.plots,
        run.test_confusion,
        run.test_regression,
        run.tracker_record("fit"),
        run.env,
    }
    top_level = {path.split("/")[len(run.folder.split("/"))] for path in named}
    found = {p.name for p in folder.iterdir()}
    assert found <= top_level, found - top_level
    # ... and the files inside those folders are the layout's
    for path in (
        run.last_checkpoint,
        run.best_checkpoint,
        run.last_checkpoint_state,
        run.fit_state,
        run.fit_metrics_csv,
        run.attempts,
        run.attempt_log(1),
        run.log("fit"),
        *(run.record(job) for job in JOB_TYPES),
        *(run.plot(name) for name in RUN_PLOTS),
        run.packages(),
        *(run.exported(fmt) for fmt in EXPORT_FILES),
        run.export_signature,
        run.export_readme,
    ):
        assert project.path(path).is_file(), path


def test_the_schemas_know_the_layouts_job_types() -> None:
    from dltemplate import schemas

    assert tuple(schemas.schema("common")["$defs"]["job_type"]["enum"]) == JOB_TYPES
    for section in ("threads", "retries", "resources"):
        assert tuple(schemas.schema("workflow")["properties"][section]["properties"]) == JOB_TYPES


def test_the_registry_schema_knows_the_layouts_export_formats() -> None:
    from dltemplate import schemas

    formats = schemas.schema("registry")["$defs"]["export_formats"]["items"]["enum"]
    assert tuple(formats) == tuple(EXPORT_FILES)
