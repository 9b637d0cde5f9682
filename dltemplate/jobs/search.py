"""The jobs of an adaptive search: ask a round of trials, tell the study their results.

The study is Optuna's journal file storage in the experiment's `search/study.journal`: every
change is one appended line under Optuna's file lock, so it survives kills and parallel writers
(the fits that report their intermediate values, dltemplate.jobs.pruning). Both jobs are
idempotent: a round asked again returns the trials it asked before (each is tagged with its
round), and a trial already told is not told again. Imports Optuna, never torch.
"""

from __future__ import annotations

import json
import random
import statistics
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dltemplate.errors import UserError
from dltemplate.layout import ExperimentLayout
from dltemplate.records import read_json, write_json_atomic
from dltemplate.registry.search import SearchSpec, grid_values

STUDY = "search"  # the study's name in its journal (one study per experiment)
ROUND = "round"  # the user attribute that tags a trial with the round that asked it


def storage(journal: str | Path):
    """Optuna's journal file storage at `journal` (appends under Optuna's file lock), checked
    first (`check_journal`)."""
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    Path(journal).parent.mkdir(parents=True, exist_ok=True)
    check_journal(journal)
    return JournalStorage(JournalFileBackend(str(journal)))


def check_journal(journal: str | Path) -> None:
    """Drop an unfinished last record of the journal (a process killed while it appended
    leaves one, without its newline: the change it wrote never happened), and refuse a record
    elsewhere that does not read as JSON, naming the file and the line. Optuna alone would
    append after the unfinished record and then fail on the line they make with a bare
    JSONDecodeError. Holds Optuna's own lock on the file, so no writer is halfway through."""
    from optuna.storages.journal import JournalFileSymlinkLock

    path = Path(journal)
    if not path.is_file():
        return
    lock = JournalFileSymlinkLock(str(path))  # the lock JournalFileBackend takes by default
    lock.acquire()
    try:
        data = path.read_bytes()
        complete = data.rfind(b"\n") + 1
        if complete < len(data):
            with path.open("r+b") as f:
                f.truncate(complete)
        for number, line in enumerate(data[:complete].splitlines(), start=1):
            _check_record(path, number, line)
    finally:
        lock.release()


def _check_record(path: Path, number: int, line: bytes) -> None:
    try:
        json.loads(line)
    except ValueError:
        raise UserError(
            f"The study journal {path} is damaged at line {number}: not a record Optuna wrote "
            "(edited by hand, or a disk fault); restore the file from a backup, or start the "
            "search again in a new experiment"
        ) from None


def round_seed(seed: int | None, k: int) -> int | None:
    """The sampler's seed in round `k`: each round's job makes a new sampler, and one seeded
    alike in every round would draw the same random (start-up) points again."""
    return None if seed is None else random.Random(f"{seed}/{k}").randrange(2**32)


def sampler_of(spec: SearchSpec, k: int):
    import optuna

    seed = round_seed(spec.seed, k)
    if spec.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if spec.sampler == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
    if spec.sampler == "gp":
        return optuna.samplers.GPSampler(seed=seed)
    if spec.sampler == "grid":
        grid = {path: grid_values(dist) for path, dist in spec.space.items()}
        return optuna.samplers.GridSampler(grid, seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def pruner_of(pruner: Mapping[str, Any]):
    """Optuna's pruner for a search's `pruner:` (checked by dltemplate.registry.search)."""
    import optuna

    kind = pruner["type"]
    if kind == "median":
        return optuna.pruners.MedianPruner(
            n_startup_trials=pruner.get("startup_trials", 5),
            n_warmup_steps=pruner.get("warmup_epochs", 0),
        )
    if kind == "hyperband":
        return optuna.pruners.HyperbandPruner()
    return optuna.pruners.NopPruner()


def distributions(spec: SearchSpec) -> dict[str, Any]:
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    made = {}
    for path, dist in spec.space.items():
        if dist["type"] == "categorical":
            made[path] = CategoricalDistribution(dist["choices"])
        elif dist["type"] == "int":
            step = dist.get("step", 1)
            made[path] = IntDistribution(dist["low"], dist["high"], log=dist["log"], step=step)
        else:
            step = dist.get("step")
            made[path] = FloatDistribution(dist["low"], dist["high"], log=dist["log"], step=step)
    return made


def open_study(layout: ExperimentLayout, spec: SearchSpec, k: int | None = None):
    """The experiment's study, created on first use with the search's direction; with the
    search's sampler for round `k`'s asks, else (to tell) a plain one: the grid sampler's
    after-trial hook stops the study it belongs to, which only works inside `optimize`."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(
        study_name=STUDY,
        storage=storage(layout.study_journal),
        sampler=sampler_of(spec, k) if k is not None else optuna.samplers.RandomSampler(),
        pruner=pruner_of(spec.pruner),
        direction="minimize" if spec.metric_mode == "min" else "maximize",
        load_if_exists=True,
    )


def ask_round(layout: ExperimentLayout, spec: SearchSpec, k: int) -> dict[str, Any]:
    """Ask the study for round `k`'s trials (those it asked before, if any, again) and write
    `search/round-<k>.json`: each trial's number, params and runs."""
    from optuna.trial import TrialState

    if not Path(layout.search_spec).is_file():  # the settings the study is bound to
        write_json_atomic(layout.search_spec, spec.fixed())
    study = open_study(layout, spec, k)
    # A trial asked by a round job killed before it could tag it: that round's, adopted.
    for frozen in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if ROUND not in frozen.user_attrs:
            study._storage.set_trial_user_attr(frozen._trial_id, ROUND, k)
    mine = _round_trials(study, k)
    for _ in range(spec.round_size(k) - len(mine)):
        trial = study.ask(distributions(spec))
        trial.set_user_attr(ROUND, k)
    where = f"Registry {spec.source}: at the search's name"
    trials = [
        {
            "number": t.number,
            "params": t.params,
            "runs": spec.trial_runs(t.number, t.params, where),
        }
        for t in _round_trials(study, k)
    ]
    asked = {"round": k, "trials": trials}
    write_json_atomic(layout.search_round(k), asked)
    print(f"Round {k}: asked trials {', '.join(str(t['number']) for t in trials)}", flush=True)
    return asked


def _round_trials(study, k: int) -> list:
    return sorted(
        (t for t in study.get_trials(deepcopy=False) if t.user_attrs.get(ROUND) == k),
        key=lambda t: t.number,
    )


def trial_outcome(layout: ExperimentLayout, spec: SearchSpec, runs: list[dict]) -> dict:
    """{state: complete|pruned, value, values}: what the runs of one trial say, from their
    records (fit.done for a val/ metric and pruning, test.done for a test/ metric)."""
    values, pruned = [], False
    job = "test" if spec.metric.startswith("test/") else "fit"
    for run in runs:
        run_layout = layout.run(run["name"])
        fit = read_json(run_layout.done("fit"), default={}) or {}
        if fit.get("pruned"):
            pruned = True
            continue
        record = read_json(run_layout.done(job), default={}) or {}
        metrics = record.get("metrics", {})
        if spec.metric not in metrics:
            known = ", ".join(m for m in metrics if m.split("/")[0] == job) or "none"
            raise UserError(
                f"{run_layout.done(job)} has no {spec.metric} (its {job} metrics: {known}); "
                f"set the search's `metric:` in {spec.source} to one the runs log"
            )
        values.append(float(metrics[spec.metric]))
    if pruned:
        return {"state": "pruned", "value": None, "values": values}
    return {"state": "complete", "value": statistics.fmean(values), "values": values}


def tell_round(layout: ExperimentLayout, spec: SearchSpec, k: int) -> dict[str, Any]:
    """Tell the study the results of round `k`'s trials (those not told yet) and write
    `search/told-<k>.json`."""
    from optuna.trial import TrialState

    study = open_study(layout, spec)
    asked = json.loads(Path(layout.search_round(k)).read_text())
    told = []
    for trial in asked["trials"]:
        outcome = trial_outcome(layout, spec, trial["runs"])
        frozen = study._storage.get_trial(
            study._storage.get_trial_id_from_study_id_trial_number(study._study_id, trial["number"])
        )
        if frozen.state == TrialState.RUNNING:
            if outcome["state"] == "pruned":
                study.tell(trial["number"], state=TrialState.PRUNED)
            else:
                study.tell(trial["number"], outcome["value"])
        told.append({"number": trial["number"], "params": trial["params"], **outcome})
        print(f"Trial {trial['number']}: {outcome['state']}, {outcome['value']}", flush=True)
    result = {"round": k, "metric": spec.metric, "trials": told}
    write_json_atomic(layout.search_told(k), result)
    return result


def _spec(snakemake: Any) -> tuple[ExperimentLayout, SearchSpec, int]:
    wildcards = snakemake.wildcards
    spec = SearchSpec.from_params(snakemake.params.search)
    return ExperimentLayout.of(wildcards.proj, wildcards.exp), spec, int(wildcards.k)


def ask_step(snakemake: Any) -> None:
    """The `search_round` checkpoint's step (dltemplate/workflow/scripts/search_round.py)."""
    ask_round(*_spec(snakemake))


def tell_step(snakemake: Any) -> None:
    """The `search_tell` rule's step (dltemplate/workflow/scripts/search_tell.py)."""
    tell_round(*_spec(snakemake))


def plot_study(layout: ExperimentLayout, spec: SearchSpec, history: str, importances: str) -> None:
    """Draw the study's optimisation history and parameter importances (Optuna's matplotlib
    plots, headless); with fewer than two finished trials, the importances panel says so."""
    import warnings

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.trial import TrialState
    from optuna.visualization.matplotlib import (
        plot_optimization_history,
        plot_param_importances,
    )

    study = open_study(layout, spec)
    finished = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Optuna's matplotlib plots are "experimental"
        axes = plot_optimization_history(study, target_name=spec.metric)
        axes.figure.savefig(history, bbox_inches="tight", dpi=120)
        plt.close(axes.figure)
        if len(finished) >= 2 and len(spec.space) >= 1:
            axes = plot_param_importances(study, target_name=spec.metric)
        else:
            _, axes = plt.subplots(figsize=(6, 2))
            axes.axis("off")
            axes.text(
                0.5,
                0.5,
                f"{len(finished)} finished trial(s): too few for importances",
                ha="center",
                va="center",
            )
        axes.figure.savefig(importances, bbox_inches="tight", dpi=120)
        plt.close(axes.figure)


def plots_step(snakemake: Any) -> None:
    """The `search_plots` rule's step (dltemplate/workflow/scripts/search_plots.py)."""
    wildcards = snakemake.wildcards
    spec = SearchSpec.from_params(snakemake.params.search)
    layout = ExperimentLayout.of(wildcards.proj, wildcards.exp)
    plot_study(layout, spec, snakemake.output.history, snakemake.output.importances)
