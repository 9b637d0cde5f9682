"""The run registry: projects -> experiments -> runs, one YAML file per project.

`configs/projects/<proj>.yaml` declares a project's experiments and their runs (config file,
description, job types, overrides). Loading it is cheap (no torch) because Snakemake does it
while parsing the workflow; it is validated against dltemplate/schemas/registry.yaml, and every
error names the file and key.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from dltemplate import schemas
from dltemplate.config.root import JOB_TYPES
from dltemplate.errors import RegistryError
from dltemplate.layout import DEFAULT_JOBS, EXPORT_FILES, ExperimentLayout, RunLayout
from dltemplate.registry import checked_cache, ids
from dltemplate.registry.names import name_problem
from dltemplate.registry.resources import job_layers
from dltemplate.registry.search import SearchSpec, asked_trials, check_study, parse_search
from dltemplate.registry.sweeps import FOLD, expand_sweep
from dltemplate.registry.yaml12 import error_where, safe_load


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
    swept: bool = False  # declared by its experiment's `sweep:` (its seed from `seeds:`)
    export: tuple[str, ...] = tuple(EXPORT_FILES)  # the formats its export job writes
    trial: int | None = None  # the number of the search trial it runs (its experiment's search:)
    pruning: dict[str, Any] | None = None  # how its fit reports to the study (registry.search)

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
    id: int | None = None  # within its project (dltemplate.registry.ids); None until assigned
    export_best: bool = False  # `export: best`: export the best run by `metric`
    search: SearchSpec | None = None  # `search:`: its runs are the trials asked so far
    rounds_read: int = 0  # the search's rounds whose trials `runs` holds

    def with_asked_trials(self) -> Experiment:
        """This experiment with the search trials asked since it was loaded (the round jobs
        write them while Snakemake runs; rounds only ever add trials)."""
        if self.search is None:
            return self
        layout = ExperimentLayout.of(self.proj, self.name)
        # From the last round read: it grows when `trials` grows (a round job asked again).
        trials, rounds = asked_trials(layout, self.search, max(0, self.rounds_read - 1))
        new = _trial_runs(self.proj, self.name, self.search, trials, self.runs)
        if not new and rounds == self.rounds_read:
            return self
        return replace(self, runs={**self.runs, **new}, rounds_read=rounds)

    @property
    def layout(self) -> ExperimentLayout:
        return ExperimentLayout.of(self.proj, self.name)


@dataclass(frozen=True)
class Project:
    name: str
    description: str
    experiments: dict[str, Experiment]
    source: str
    created: str = ""
    id: int | None = None  # dltemplate.registry.ids; None until assigned
    next_experiment_id: int | None = None


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
            if self._refresh(proj, exp) and name in self.projects[proj].experiments[exp].runs:
                return self.projects[proj].experiments[exp].runs[name]
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

    def resolve_project(self, text: str) -> str:
        """The name of the project that `text` names, by name or by id (an unknown name is
        returned as it is, for the command's own message)."""
        by_id = {p.id: p.name for p in self.projects.values()}
        return _resolve(text, self.projects, by_id, "project", f"the registry {self.folder}")

    def resolve_experiment(self, proj: str, text: str) -> str:
        """The name of project `proj`'s experiment that `text` names, by name or by id."""
        experiments = self.project(proj).experiments
        by_id = {e.id: e.name for e in experiments.values()}
        return _resolve(text, experiments, by_id, "experiment", f"project {proj}")

    def _refresh(self, proj: str, exp: str) -> bool:
        """Add the trials a search of `proj/exp` asked since loading; False: not a search."""
        experiment = self.projects.get(proj) and self.projects[proj].experiments.get(exp)
        if not experiment or experiment.search is None:
            return False
        self.projects[proj].experiments[exp] = experiment.with_asked_trials()
        return True

    def experiment(self, proj: str, exp: str) -> Experiment:
        self._refresh(proj, exp)
        try:
            return self.projects[proj].experiments[exp]
        except KeyError:
            raise RegistryError(
                f"No experiment {proj}/{exp} in the registry {self.folder}"
            ) from None


def _resolve(text: str, named: dict, by_id: dict, kind: str, where: str) -> str:
    if not ids.is_id(text):
        return text
    other = by_id.get(int(text))
    if text in named:  # a name made of digits, from before they were refused
        if other is not None and other != text:
            raise RegistryError(
                f"{text!r} is both the name of a {kind} and the id of {kind} {other} in "
                f"{where}; use the name {other!r}, and rename the {kind} {text!r}"
            )
        print(
            f"Warning: the {kind} name {text!r} is a plain number, read as its name; "
            "rename it (new names may not be numbers)",
            file=sys.stderr,
        )
        return text
    if other is None:
        known = ", ".join(f"{i} ({name})" for i, name in sorted(by_id.items())) or "none"
        raise RegistryError(f"No {kind} with id {text} in {where}; known: {known}")
    return other


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


def parse_project(path: Path, text: str) -> Any:
    """The YAML of project file `path`, or the one line that Snakemake and the commands that
    edit the registry both show when it does not parse."""
    try:
        return safe_load(text)
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        where, near = error_where(exc, text)
        raise RegistryError(
            f"Registry {path}{where} does not parse as YAML: {problem}{near}; fix the file by hand"
        ) from None


def load_project(path: Path) -> Project:
    """Load and validate one project file."""

    try:
        text = path.read_text()
    except OSError as exc:
        raise RegistryError(f"Registry {path} cannot be read: {exc.strerror}") from None
    data = checked_cache.checked(path, text)
    if data is None:
        data = parse_project(path, text)
        validator = schemas.validator("registry")
        errors = sorted(
            validator.iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path]
        )
        if errors:
            raise _schema_error(path, errors[0])
        checked_cache.remember(path, text, data)
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
                export=tuple(f for f in EXPORT_FILES if f in run.get("export", EXPORT_FILES)),
            )
        if "sweep" in exp:
            runs.update(_sweep_runs(path, proj, exp_name, exp, runs))
        search = _search(path, proj, exp_name, exp, runs)
        metric = exp.get("metric") or (search and search.metric)
        experiments[exp_name] = Experiment(
            proj,
            exp_name,
            exp["description"],
            runs,
            exp.get("created", ""),
            metric,
            exp.get("metric_mode") or (search and search.metric_mode),
            exp.get(ids.ID),
            export_best=exp.get("export") == "best",
            search=search,
        ).with_asked_trials()
    _check_unique_ids(path, {e.name: e.id for e in experiments.values()}, "experiment")
    return Project(
        proj,
        data["description"],
        experiments,
        str(path),
        data.get("created", ""),
        data.get(ids.ID),
        data.get(ids.NEXT_EXPERIMENT_ID),
    )


def _check_unique_ids(where: str | Path, named: dict[str, int | None], kind: str) -> None:
    seen: dict[int, str] = {}
    for name, number in named.items():
        if number is not None and number in seen:
            raise RegistryError(
                f"Registry {where}: {kind}s {seen[number]} and {name} have the same id {number}; "
                "give one of them a new id (ids are never reused)"
            )
        if number is not None:
            seen[number] = name


def with_ids(projects: dict[str, Project], next_project_id: int) -> dict[str, Project]:
    """The projects with every missing id assigned as the first writing command will (in
    file order, dltemplate.registry.ids), without writing anything."""
    skeletons = []
    for project in projects.values():
        skeleton: dict[str, Any] = {
            "experiments": {
                e.name: {} if e.id is None else {ids.ID: e.id} for e in project.experiments.values()
            }
        }
        if project.id is not None:
            skeleton[ids.ID] = project.id
        if project.next_experiment_id is not None:
            skeleton[ids.NEXT_EXPERIMENT_ID] = project.next_experiment_id
        skeletons.append(skeleton)
    ids.assign_ids(skeletons, next_project_id)
    result = {}
    for project, skeleton in zip(projects.values(), skeletons, strict=True):
        experiments = {
            name: replace(e, id=skeleton["experiments"][name][ids.ID])
            for name, e in project.experiments.items()
        }
        result[project.name] = replace(
            project,
            experiments=experiments,
            id=skeleton[ids.ID],
            next_experiment_id=skeleton[ids.NEXT_EXPERIMENT_ID],
        )
    return result


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
            swept=True,
        )
    return runs


SEARCH_JOBS = ("fit", "test")  # a trial's jobs unless the search says otherwise


def _search(
    path: Path, proj: str, exp: str, experiment: dict, declared: dict[str, Run]
) -> SearchSpec | None:
    """The experiment's `search:`, checked (also against the study it started, if any)."""
    if "search" not in experiment:
        return None
    where = f"Registry {path}: at experiments.{exp}.search"
    if "sweep" in experiment:
        raise RegistryError(
            f"{where}: an experiment has a sweep or a search, not both; move one to an "
            "experiment of its own"
        )
    if experiment.get("metric") and experiment["metric"] != experiment["search"]["metric"]:
        raise RegistryError(
            f"{where}.metric: {experiment['search']['metric']} differs from the experiment's "
            f"metric {experiment['metric']}; keep one (the search's is the experiment's)"
        )
    jobs = tuple(j for j in JOB_TYPES if j in experiment["search"].get("jobs", SEARCH_JOBS))
    spec = parse_search(experiment["search"], jobs, where)
    check_study(spec, ExperimentLayout.of(proj, exp), where)
    if declared:
        raise RegistryError(
            f"{where}: the experiment also declares runs ({', '.join(declared)}); a search's "
            "runs are its trials: move them to an experiment of their own"
        )
    return replace(
        spec,
        jobs=jobs,
        resources=job_layers(experiment.get("resources"), experiment["search"].get("resources")),
        source=str(path),
    )


def _trial_runs(
    proj: str, exp: str, spec: SearchSpec, trials: list[dict], known: dict[str, Run]
) -> dict[str, Run]:
    runs = {}
    for trial in trials:
        for entry in trial["runs"]:
            if entry["name"] in known:
                continue
            runs[entry["name"]] = Run(
                proj=proj,
                exp=exp,
                name=entry["name"],
                description=f"search trial {trial['number']}"
                + (f", seed {entry['seed']}" if entry["seed"] is not None else "")
                + (f", fold {entry['overrides'][FOLD]}" if FOLD in entry["overrides"] else ""),
                config=spec.config,
                jobs=spec.jobs,
                overrides=dict(entry["overrides"]),
                source=spec.source,
                resources=spec.resources,
                swept=entry["seed"] is not None,
                trial=trial["number"],
                pruning=spec.pruning(ExperimentLayout.of(proj, exp), trial["number"], entry),
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
    _check_unique_ids(folder, {p.source: p.id for p in projects.values()}, "project file")
    registry = Registry(folder, with_ids(projects, ids.read_counter(folder)))
    _check_init_from(registry)
    return registry
