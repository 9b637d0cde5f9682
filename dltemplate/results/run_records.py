"""Run records: what ran, where, when, from which code, and how it ended.

Each job writes only its own record, `results/<proj>/<exp>/<run>/records/<job>.json`: at its
start (status `running`) and at its end (`done` or `failed`, with the error). No job ever
reads and rewrites a file that another job writes, so fit, test and predict of one run (and
any number of runs) can run at once. Two downstream rules assemble the records: `run.json`
per run (the registry entry plus every job's record and the test metrics) and
`results/<proj>/project.json` (all experiments and runs). Readers that want the live state
(`main.py ls`) assemble the same way from the files as they are.

Torch-free: imported while Snakemake parses the workflow.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from dltemplate.errors import one_line
from dltemplate.layout import ProjectLayout, RunLayout
from dltemplate.records import now, read_json, write_json_atomic
from dltemplate.registry.model import Project, Registry, Run
from dltemplate.results.environment import complete, job_environment


def job_record_path(run_dir: str | Path, job: str) -> Path:
    return Path(RunLayout.at(run_dir).record(job))


@contextlib.contextmanager
def job_record(
    run_dir: str | Path, job: str, run_inputs: Mapping[str, Any] | None = None
) -> Iterator[dict[str, Any]]:
    """Record job `job` of the run in `run_dir` around the block that does the work.

    Writes `records/<job>.json` (atomically) when the block starts and when it ends; an
    exception marks it `failed` with the error's one line and propagates unchanged. The record
    keeps the job's `run_inputs` (dltemplate.workflow.job_spec), as Snakemake does, for the next
    parse (dltemplate.workflow.engine_change).
    """
    path = job_record_path(run_dir, job)
    record: dict[str, Any] = {
        "job": job,
        "status": "running",
        "started": now(),
        "ended": None,
        "seconds": None,
        **job_environment(run_dir, job),
    }
    if run_inputs is not None:
        record["run_inputs"] = dict(run_inputs)
    write_json_atomic(path, record)
    started = time.monotonic()
    try:
        yield record
    except BaseException as exc:
        message = one_line(exc)
        if isinstance(exc, SystemExit | KeyboardInterrupt) and not str(exc).strip():
            message = f"interrupted ({type(exc).__name__})"
        record.update(status="failed", error=message)
        raise
    else:
        record["status"] = "done"
    finally:
        complete(record)  # torch's CUDA and cuDNN, the GPUs: known once the job has run
        record.update(ended=now(), seconds=round(time.monotonic() - started, 3))
        write_json_atomic(path, record)


def run_info(run: Run) -> dict[str, Any]:
    """The registry's facts about a run, as plain data (a rule's params)."""
    return {
        "project": run.proj,
        "experiment": run.exp,
        "name": run.name,
        "description": run.description,
        "config": run.config,
        "overrides": dict(run.overrides),
        "jobs": list(run.jobs),
        "created": run.created or None,
        **({"init_from": run.init_from} if run.init_from else {}),  # the fine-tuned run
    }


def project_info(project: Project) -> dict[str, Any]:
    """The registry's facts about a project and its experiments (a rule's params)."""
    return {
        "name": project.name,
        "description": project.description,
        "created": project.created or None,
        "experiments": {
            exp.name: {
                "description": exp.description,
                "created": exp.created or None,
                "runs": list(exp.runs),
            }
            for exp in project.experiments.values()
        },
    }


def assemble_run_record(info: Mapping[str, Any], run_dir: str | Path) -> dict[str, Any]:
    """The run record: `info` (see `run_info`), each declared job's record, and the metrics
    of its validate and test jobs (`val/...`, `test/...`)."""
    run_dir = Path(run_dir)
    jobs = {}
    for job in info["jobs"]:
        jobs[job] = read_json(job_record_path(run_dir, job), default=None) or {"status": "not run"}
    metrics = {}
    for job in ("validate", "test"):
        done = read_json(RunLayout.at(run_dir).done(job), default=None) or {}
        metrics.update(done.get("metrics", {}))
    return {**info, "folder": str(run_dir), "records": jobs, "metrics": metrics}


def write_run_record(*, info: Mapping[str, Any], run_dir: str | Path, out: str | Path) -> None:
    write_json_atomic(out, assemble_run_record(info, run_dir))


def write_project_record(
    *, info: Mapping[str, Any], run_records: list[str], out: str | Path
) -> None:
    """`project.json`: the project's facts with every experiment's `run.json` records nested."""
    by_folder = {str(Path(p).parent): read_json(p, default=None) for p in run_records}
    experiments = {}
    for exp, exp_info in info["experiments"].items():
        runs = {}
        for name in exp_info["runs"]:
            folder = str(Path(RunLayout.of(info["name"], exp, name).folder))
            runs[name] = by_folder.get(folder)
        experiments[exp] = {
            "description": exp_info["description"],
            "created": exp_info["created"],
            "runs": runs,
        }
    record = {k: v for k, v in info.items() if k != "experiments"}
    write_json_atomic(out, {**record, "experiments": experiments})


def run_record_file(run: Run) -> str:
    return run.layout.run_json


def project_record_file(proj: str) -> str:
    return ProjectLayout.of(proj).project_json


def record_targets(registry: Registry) -> list[str]:
    """Every run's `run.json` and every project's `project.json` (for projects with runs)."""
    targets = [run_record_file(run) for run in registry.runs()]
    for project in registry.projects.values():
        if any(exp.runs for exp in project.experiments.values()):
            targets.append(project_record_file(project.name))
    return targets


def project_run_records(registry: Registry, proj: str) -> list[str]:
    return [run_record_file(run) for run in registry.runs() if run.proj == proj]
