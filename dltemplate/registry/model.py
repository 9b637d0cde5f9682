"""The run registry: projects -> experiments -> runs, one YAML file per project.

`configs/projects/<proj>.yaml` declares a project's experiments and their runs (config file,
description, job types, overrides). Loading it is cheap (no torch) because Snakemake does it
while parsing the workflow; it is validated against dltemplate/schemas/registry.yaml, and every
error names the file and key.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dltemplate import schemas
from dltemplate.config.root import JOB_TYPES
from dltemplate.errors import RegistryError
from dltemplate.layout import DEFAULT_JOBS, RunLayout
from dltemplate.registry.names import name_problem
from dltemplate.registry.resources import job_layers
from dltemplate.registry.sweeps import expand_sweep
from dltemplate.registry.yaml12 import safe_load


@dataclass(frozen=True)
class Run:
    """One declared run: where its config is, which jobs it has, what it overrides."""

    proj: str
    exp: str
    name: str
    description: str
    config: str
    jobs: tuple[str, ...] = DEFAULT_JOBS
    overrides: dict[str, Any] = field(default_factory=dict)
    source: str = ""  # the registry file that declares it, for messages
    created: str = ""  # when `main.py add-run` declared it (ISO 8601), if it did
    ckpt: str | None = None  # a checkpoint that test and predict use; the run has no fit then
    # Per job type, what the registry asks (experiment's, then run's): dltemplate.registry.resources
    resources: dict[str, dict[str, Any]] = field(default_factory=dict)
    init_from: str | None = None  # "<proj>/<exp>/<run>" whose best weights start the fit

    @property
    def key(self) -> str:
        return f"{self.proj}/{self.exp}/{self.name}"

    @property
    def layout(self) -> RunLayout:
        return RunLayout.of(self.proj, self.exp, self.name)

    @property
    def folder(self) -> str:
        return self.layout.folder


@dataclass(frozen=True)
class Experiment:
    proj: str
    name: str
    description: str
    runs: dict[str, Run]
    created: str = ""
    metric: str | None = None  # None: the first test metric
    metric_mode: str | None = None  # None: "min" for loss-like names, else "max"


@dataclass(frozen=True)
class Project:
    name: str
    description: str
    experiments: dict[str, Experiment]
    source: str
    created: str = ""


@dataclass
class Registry:
    """All projects of a registry folder."""

    folder: Path
    projects: dict[str, Project]

    def runs(self) -> Iterator[Run]:
        for project in self.projects.values():
            for experiment in project.experiments.values():
                yield from experiment.runs.values()

    def run(self, proj: str, exp: str, name: str) -> Run:
        try:
            return self.projects[proj].experiments[exp].runs[name]
        except KeyError:
            raise RegistryError(
                f"No run {proj}/{exp}/{name} in the registry {self.folder}; "
                "`main.py ls` lists the declared runs"
            ) from None

    def project(self, proj: str) -> Project:
        try:
            return self.projects[proj]
        except KeyError:
            raise RegistryError(
                f"No project {proj} in the registry {self.folder}; "
                f"known: {', '.join(self.projects)}"
            ) from None

    def experiment(self, proj: str, exp: str) -> Experiment:
        try:
            return self.projects[proj].experiments[exp]
        except KeyError:
            raise RegistryError(
                f"No experiment {proj}/{exp} in the registry {self.folder}"
            ) from None


def _schema_error(path: Path, error) -> RegistryError:
    return RegistryError(
        f"Registry {path}: at {schemas.key_of(error)}: {schemas.message_of(error)}"
    )


def _check_names(path: Path, kind: str, names: list[str], where: str) -> None:
    seen: dict[str, str] = {}
    for name in names:
        problem = name_problem(name, kind)
        if problem:
            raise RegistryError(f"Registry {path}: {kind} name {name!r} at {where}: {problem}")
        other = seen.get(name.lower())
        if other is not None:
            raise RegistryError(
                f"Registry {path}: {kind} names {other!r} and {name!r} at {where} differ only in "
                "case; rename one (case-insensitive file systems would mix their results)"
            )
        seen[name.lower()] = name


def _run_jobs(path: Path, run: dict, where: str) -> tuple[str, ...]:
    """The run's jobs in pipeline order; a run with `ckpt:` has no fit (default: test, predict)."""
    default = tuple(j for j in DEFAULT_JOBS if j != "fit") if "ckpt" in run else DEFAULT_JOBS
    jobs = tuple(j for j in JOB_TYPES if j in run.get("jobs", default))
    if "ckpt" in run and "fit" in jobs:
        raise RegistryError(
            f"Registry {path}: at {where}: a run with ckpt: tests and predicts with that "
            "checkpoint and is never fitted; remove fit from its jobs (or remove ckpt:)"
        )
    return jobs


def load_project(path: Path) -> Project:
    """Load and validate one project file."""

    try:
        data = safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise RegistryError(f"Registry {path}{where} does not parse as YAML: {problem}") from None
    except OSError as exc:
        raise RegistryError(f"Registry {path} cannot be read: {exc.strerror}") from None
    validator = schemas.validator("registry")
    errors = sorted(validator.iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path])
    if errors:
        raise _schema_error(path, errors[0])
    proj = path.stem
    _check_names(path, "project", [proj], "the file name")
    _check_names(path, "experiment", list(data["experiments"]), "experiments")
    experiments = {}
    for exp_name, exp in data["experiments"].items():
        runs_data = exp.get("runs") or {}
        _check_names(path, "run", list(runs_data), f"experiments.{exp_name}.runs")
        runs = {}
        for run_name, run in runs_data.items():
            runs[run_name] = Run(
                proj=proj,
                exp=exp_name,
                name=run_name,
                description=run["description"],
                config=run["config"],
                jobs=_run_jobs(path, run, f"experiments.{exp_name}.runs.{run_name}"),
                overrides=dict(run.get("overrides") or {}),
                source=str(path),
                created=run.get("created", ""),
                ckpt=run.get("ckpt"),
                resources=job_layers(exp.get("resources"), run.get("resources")),
                init_from=_init_from(path, run, f"experiments.{exp_name}.runs.{run_name}"),
            )
        if "sweep" in exp:
            runs.update(_sweep_runs(path, proj, exp_name, exp, runs))
        experiments[exp_name] = Experiment(
            proj,
            exp_name,
            exp["description"],
            runs,
            exp.get("created", ""),
            exp.get("metric"),
            exp.get("metric_mode"),
        )
    return Project(proj, data["description"], experiments, str(path), data.get("created", ""))


def _init_from(path: Path, entry: dict, where: str) -> str | None:
    parent = entry.get("init_from")
    if parent is None:
        return None
    parts = parent.split("/")
    if len(parts) != 3 or any(name_problem(p) for p in parts):
        raise RegistryError(
            f"Registry {path}: at {where}.init_from: {parent!r} is not <proj>/<exp>/<run> "
            "(e.g. digits/pretrain/mlp)"
        )
    return parent


def _sweep_runs(
    path: Path, proj: str, exp: str, experiment: dict, declared: dict[str, Run]
) -> dict[str, Run]:
    sweep = experiment["sweep"]
    resources = job_layers(experiment.get("resources"), sweep.get("resources"))
    where = f"Registry {path}: at experiments.{exp}.sweep"
    init_from = _init_from(path, sweep, f"experiments.{exp}.sweep")
    jobs = tuple(j for j in JOB_TYPES if j in sweep.get("jobs", DEFAULT_JOBS))
    lower = {name.lower(): name for name in declared}
    runs = {}
    for swept in expand_sweep(sweep, where=where):
        if swept.name.lower() in lower:
            raise RegistryError(
                f"{where}.name: the sweep's run {swept.name!r} is also declared at "
                f"experiments.{exp}.runs.{lower[swept.name.lower()]}; rename one"
            )
        runs[swept.name] = Run(
            proj=proj,
            exp=exp,
            name=swept.name,
            description=swept.description,
            config=sweep["config"],
            jobs=jobs,
            overrides=swept.overrides,
            source=str(path),
            init_from=init_from,
            resources=resources,
        )
    return runs


def _check_init_from(registry: Registry) -> None:
    """Every `init_from` names a declared run that fits, and no chain of them loops."""
    for run in registry.runs():
        seen = [run.key]
        current = run
        while current.init_from:
            proj, exp, name = current.init_from.split("/")
            parent = registry.projects.get(proj)
            parent = parent and parent.experiments.get(exp)
            parent = parent and parent.runs.get(name)
            if parent is None:
                raise RegistryError(
                    f"Registry {current.source}: run {current.key} has init_from "
                    f"{current.init_from!r}, which is not a declared run; `main.py ls` lists them"
                )
            if "fit" not in parent.jobs:
                raise RegistryError(
                    f"Registry {current.source}: run {current.key} has init_from {parent.key}, "
                    "which has no fit job; add fit to its jobs"
                )
            if parent.key in seen:
                loop = " -> ".join([*seen, parent.key])
                raise RegistryError(f"Registry {run.source}: init_from runs in a loop: {loop}")
            seen.append(parent.key)
            current = parent


def load_registry(folder: str | Path) -> Registry:
    """Load every `<proj>.yaml` of the registry folder."""
    folder = Path(folder)
    if not folder.is_dir():
        raise RegistryError(
            f"Registry folder {folder} does not exist; create it with `main.py init`"
        )
    projects = {}
    for path in sorted(folder.glob("*.yaml")):
        project = load_project(path)
        projects[project.name] = project
    _check_names(folder, "project", list(projects), str(folder))
    registry = Registry(folder, projects)
    _check_init_from(registry)
    return registry
