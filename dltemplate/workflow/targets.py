"""What the Snakemake rules ask of the registry: targets, inputs and job parameters.

Imported while Snakemake parses the workflow (and again in every cluster job), so it stays
cheap: no torch, no Lightning.
"""

from __future__ import annotations

import functools
import json
import os
import posixpath
import re
import time
from pathlib import Path
from typing import Any

from dltemplate.errors import RegistryError
from dltemplate.layout import (
    ARCHIVE_NAMES,
    ExperimentLayout,
    ProjectLayout,
    RunLayout,
    results_root,
)
from dltemplate.registry.model import Registry, Run
from dltemplate.registry.names import NAME_PATTERN
from dltemplate.workflow import engine_change
from dltemplate.workflow.job_spec import JobSpec

WILDCARD_CONSTRAINTS = {"proj": NAME_PATTERN, "exp": NAME_PATTERN, "run": NAME_PATTERN}


@functools.cache
def _archived(root: str) -> re.Pattern:
    """An archived config's path under the results root `root`: (proj, exp, run) groups."""
    name = f"({NAME_PATTERN})"
    archives = "|".join(re.escape(n) for n in ARCHIVE_NAMES.values())
    return re.compile(f"{re.escape(root)}/{name}/{name}/{name}/(?:{archives})")


def fit_inputs(registry: Registry, run: Run) -> list[str]:
    """A run whose config is the archived config of another declared run waits for that run's
    fit, which writes it (and reruns when that fit reruns). An undeclared run's archive is
    used as it lies."""
    archived = _archived(posixpath.normpath(results_root()))
    match = archived.fullmatch(posixpath.normpath(run.config.replace("\\", "/")))
    if match is None:
        return []
    proj, exp, name = match.group(1, 2, 3)
    source = registry.projects.get(proj)
    declared = source is not None and name in getattr(source.experiments.get(exp), "runs", {})
    if not declared or (proj, exp, name) == (run.proj, run.exp, run.name):
        return []
    return [RunLayout.of(proj, exp, name).done("fit")]


def fitted_input(run: Run) -> str:
    """What test and predict load: the run's `ckpt:` file when it has one (it has no fit then),
    else its fit record. An input, so that a changed checkpoint file reruns them."""
    return run.ckpt or run.layout.done("fit")


# Building a DAG asks for the digests of one config once per job (3,000 times for a 1,000-run
# sweep) within seconds; checking the files' stamps each time cost a third of a second there.
_DIGESTS: dict[tuple[str, str], tuple[float, dict[str, str]]] = {}
DIGESTS_FRESH_SECONDS = 2.0


def source_digests(run: Run) -> dict[str, str]:
    """Digests of the run's config file and the local modules it imports (no torch): a rule
    `params:` value, so that editing any of them reruns the run's jobs and nothing else."""
    from dltemplate.workflow.sources import source_digests as digests

    key, now = (os.getcwd(), run.config), time.monotonic()
    cached = _DIGESTS.get(key)
    if cached is None or now - cached[0] > DIGESTS_FRESH_SECONDS:
        cached = _DIGESTS[key] = (now, digests(run.config))
    return dict(cached[1])


def run_targets(run: Run) -> list[str]:
    """The `.done` files of the jobs a run declares."""
    return [run.layout.done(job) for job in run.jobs]


def experiment_targets(registry: Registry, proj: str, exp: str) -> list[str]:
    """The jobs of an experiment's runs; for a search, also its last round, told (which needs
    every earlier one: the rules in dltemplate/workflow/rules/search.smk chain them)."""
    experiment = registry.experiment(proj, exp)
    done = [t for run in experiment.runs.values() for t in run_targets(run)]
    if experiment.search is not None:
        done.append(search_last_told(registry, proj, exp))
    return done


def search_rounds(registry: Registry, proj: str, exp: str) -> range:
    """The rounds of an experiment's search (none without one)."""
    search = registry.experiment(proj, exp).search
    return range(search.rounds if search else 0)


def search_last_told(registry: Registry, proj: str, exp: str) -> str:
    """The last round's results, told: the search is over once it exists."""
    experiment = registry.experiment(proj, exp)
    if experiment.search is None:
        raise RegistryError(f"Experiment {proj}/{exp} has no search: in {registry.folder}")
    return experiment.layout.search_told(experiment.search.rounds - 1)


def search_params(registry: Registry, proj: str, exp: str) -> dict[str, Any]:
    """A search's settings, as the round and tell jobs take them."""
    return registry.experiment(proj, exp).search.as_params()


def search_round_waits_for(registry: Registry, proj: str, exp: str, k: int) -> int | None:
    """The round whose results round k waits for: the first earlier round not told yet, or
    None when every earlier round is told (the sampler learns from every earlier trial).

    Round k does not depend on round k-1's results in the DAG, which would chain every round
    to the one before and make Snakemake's DAG recursion as deep as the search is long (a
    RecursionError past ~200 rounds). It waits for the first untold round through the tell
    rule's checkpoint instead: once that round is told, Snakemake asks this again, and round
    k waits for the next one, a loop rather than a recursion.
    """
    experiment = registry.experiment(proj, exp)
    if experiment.search is None or not 0 <= k < experiment.search.rounds:
        raise RegistryError(
            f"Experiment {proj}/{exp} has no search round {k}; "
            f"its rounds are 0..{experiment.search.rounds - 1 if experiment.search else -1}"
        )
    told = experiment.layout.search_told
    return next((j for j in range(k) if not Path(told(j)).exists()), None)


def search_told_inputs(registry: Registry, proj: str, exp: str, k: int) -> list[str]:
    """What round k's results need: every job of its trials' runs (the round file is read by
    then; the checkpoint's `get` in dltemplate/workflow/rules/common.smk makes sure of it)."""
    experiment = registry.experiment(proj, exp)
    asked = json.loads(Path(experiment.layout.search_round(k)).read_text())
    names = [run["name"] for trial in asked["trials"] for run in trial["runs"]]
    return [t for name in names for t in run_targets(registry.run(proj, exp, name))]


def project_summary_inputs(registry: Registry, proj: str) -> list[str]:
    """The summaries of a project's experiments that have runs."""
    project = registry.project(proj)
    return [
        ExperimentLayout.of(proj, e.name).summary_csv
        for e in project.experiments.values()
        if e.runs or e.search
    ]


def init_from_done(run: Run) -> list[str]:
    """The fit record of the run whose weights start this run's fit (`init_from`), if any."""
    if not run.init_from:
        return []
    return [init_from_fit(run.init_from)]


def init_from_fit(key: str) -> str:
    """The fit record of the run named `<proj>/<exp>/<run>`."""
    return RunLayout.of(*key.split("/")).done("fit")


def all_targets(registry: Registry) -> list[str]:
    """Every declared job of every run, every experiment's summary and every project's, and
    the best run's export of each experiment that asks for it (`export: best`)."""
    targets = [t for run in registry.runs() for t in run_targets(run)]
    for project in registry.projects.values():
        targets += [
            e.layout.best_export_done
            for e in project.experiments.values()
            if e.export_best and (e.runs or e.search)
        ]
        summaries = project_summary_inputs(registry, project.name)
        targets += summaries
        if summaries:
            targets.append(ProjectLayout.of(project.name).summary_csv)
    return targets


def plot_targets(registry: Registry) -> list[str]:
    """Every experiment's comparison chart (the report shows them). A run's own plots come
    with its record job (`run_record`, target `<run>/run.json`)."""
    targets = []
    for project in registry.projects.values():
        for exp in project.experiments.values():
            if exp.runs or exp.search:
                targets.append(ExperimentLayout.of(project.name, exp.name).comparison_png)
            if exp.search:
                targets.append(exp.layout.search_history_png)
    return targets


def job_spec(
    run: Run, default_seed: int, job: str | None = None, rerun_on_engine_change: bool = False
) -> JobSpec:
    """What the run's job `job` needs, as a rule hands it to its script, with the digests of the
    config's local source files. Its run inputs (JobSpec.run_inputs) decide whether the job is
    out of date; with `rerun_on_engine_change`, a job made with another engine version is (its
    record says which: dltemplate.workflow.engine_change). Without `job`, no record is read."""
    record = engine_change.job_record(run.folder, job) if job else None
    return JobSpec(
        run_dir=run.folder,
        config=run.config,
        overrides=dict(run.overrides),
        seed=default_seed,
        source=run.source,
        init_from=init_from_fit(run.init_from) if run.init_from else None,
        sources=source_digests(run),
        pruning=run.pruning,
        engine_rerun=engine_change.engine_rerun(record, rerun_on_engine_change),
    )


def test_done(run: Run) -> list[str]:
    """The run's test record, when it has a test job (the export quotes its metrics)."""
    return [run.layout.done("test")] if "test" in run.jobs else []


def tested_runs(registry: Registry, proj: str, exp: str) -> list[Run]:
    """The runs of an experiment that have a test job: the candidates of `export: best`."""
    return [r for r in registry.experiment(proj, exp).runs.values() if "test" in r.jobs]


def best_export_fits(registry: Registry, proj: str, exp: str) -> dict[str, str]:
    """{run: its fit.done (or ckpt:)} for the candidates of an experiment's `export: best`."""
    return {run.name: fitted_input(run) for run in tested_runs(registry, proj, exp)}


def best_export_specs(
    registry: Registry, proj: str, exp: str, seed: int, rerun_on_engine_change: bool = False
) -> dict[str, JobSpec]:
    """{run: the job spec of its fit} for the candidates of an experiment's `export: best`."""
    return {
        run.name: job_spec(run, seed, "fit", rerun_on_engine_change)
        for run in tested_runs(registry, proj, exp)
    }


def best_export_metric(registry: Registry, proj: str, exp: str) -> dict[str, str | None]:
    experiment = registry.experiment(proj, exp)
    return {"metric": experiment.metric, "mode": experiment.metric_mode}


def rerun_command(target: str | Path, job: str) -> str:
    """The command that reruns job type `job` for `target` and what depends on it, nothing
    else. The target comes first: `-R` takes several values and would swallow it, and
    Snakemake would then rerun that job of every run (its default target)."""
    return f"snakemake --cores 1 {Path(target).as_posix()} --forcerun {job}"
