"""Adaptive search: an experiment's `search:` block, checked, and the trials it has asked so far.

A search asks Optuna for `parallel` trials at a time (a round), runs each as ordinary runs (one
per seed), tells the study their results and asks again until `trials` are asked. The rounds are
fixed in advance: round k asks `min(parallel, trials - k * parallel)` trials, so the DAG knows
how many there are; what a round asks is written to `search/round-<k>.json` by the round's
checkpoint job (dltemplate.jobs.search), and read back here, so that an asked trial is a declared
run like any other.

Torch-free and Optuna-free: Snakemake runs this while it parses the workflow.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dltemplate.errors import RegistryError
from dltemplate.layout import ExperimentLayout
from dltemplate.registry.names import name_problem
from dltemplate.registry.sweeps import FOLD, _bound, fill_template, fold_values, number, sweep_seeds

SAMPLERS = ("tpe", "random", "cmaes", "gp", "grid")
PRUNERS = ("median", "hyperband", "none")
TYPES = ("float", "int", "categorical")
# What the study is bound to: a change in any of these would mix two searches in one study.
FIXED = ("config", "space", "metric", "metric_mode", "sampler", "seed", "pruner", "overrides")
FIXED += ("parallel", "seeds", "folds")


@dataclass(frozen=True)
class SearchSpec:
    """An experiment's search, checked: what the round and tell jobs and the fit's pruning use."""

    config: str
    space: dict[str, dict[str, Any]]  # path -> {type, low, high, log, step, choices}
    trials: int
    parallel: int
    metric: str
    metric_mode: str  # "min" or "max" (declared, else dltemplate.results.metric_policy)
    sampler: str
    seed: int | None
    pruner: dict[str, Any]  # {type, intermediate, startup_trials, warmup_epochs}
    seeds: list[int | None]
    overrides: dict[str, Any] = field(default_factory=dict)
    name: str = ""  # the trial-name template; "" for t{trial:03d}(-s{seed})(-f{fold})
    folds: int | None = None  # k-fold: each trial's runs over K folds (and its seeds)
    jobs: tuple[str, ...] = ()  # every trial run's (set by the registry)
    resources: dict[str, dict[str, Any]] = field(default_factory=dict)
    source: str = ""  # the registry file, for messages

    @property
    def rounds(self) -> int:
        return math.ceil(self.trials / self.parallel)

    def round_size(self, k: int) -> int:
        return min(self.parallel, self.trials - k * self.parallel)

    def fixed(self) -> dict[str, Any]:
        """The settings a study is bound to (search/spec.json), as plain JSON data."""
        data = {
            "config": self.config,
            "space": self.space,
            "metric": self.metric,
            "metric_mode": self.metric_mode,
            "sampler": self.sampler,
            "seed": self.seed,
            "pruner": self.pruner,
            "overrides": self.overrides,
            "parallel": self.parallel,
            "seeds": self.seeds,
            "folds": self.folds,
        }
        return json.loads(json.dumps(data, sort_keys=True, default=str))

    def as_params(self) -> dict[str, Any]:
        """Plain data for a rule's `params` (the round and tell jobs)."""
        return {**self.fixed(), "trials": self.trials, "name": self.name, "source": self.source}

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> SearchSpec:
        return cls(**dict(params))

    def pruning(self, layout: ExperimentLayout, trial: int, run: Mapping[str, Any]) -> dict | None:
        """What a trial's fit needs to report its intermediate metric to the study each epoch
        (dltemplate.jobs.pruning); None without a pruner, and for all runs but the first seed's
        first fold (one run reports for its trial)."""
        first = run["seed"] == self.seeds[0] and run["overrides"].get(FOLD, 0) == 0
        if self.pruner["type"] == "none" or not first:
            return None
        return {
            "journal": layout.study_journal,
            "trial": trial,
            "intermediate": self.pruner["intermediate"],
            # Optuna compares intermediate values in the study's direction: flip them when the
            # intermediate metric is better the other way (val/loss for test/acc).
            "sign": 1 if self.pruner["mode"] == self.metric_mode else -1,
            "pruner": {k: v for k, v in self.pruner.items() if k not in ("intermediate", "mode")},
        }

    def template(self) -> str:
        if self.name:
            return self.name
        seeds = "-s{seed}" if self.seeds != [None] else ""
        return "t{trial:03d}" + seeds + ("-f{fold}" if self.folds else "")

    def trial_runs(self, number_: int, params: Mapping[str, Any], where: str) -> list[dict]:
        """The runs of trial `number_` with `params`: [{name, seed, overrides}], one per seed
        and fold."""
        runs = []
        for seed, fold in itertools.product(self.seeds, fold_values(self.folds)):
            overrides = {**self.overrides, **params, **fold}
            if seed is not None:
                overrides["seed"] = seed
            values = {**overrides, "trial": number_, "seed": seed, "fold": fold.get(FOLD)}
            name = fill_template(self.template(), values, where=where, what="name template")
            runs.append({"name": name, "seed": seed, "overrides": overrides})
        return runs


def _fail(where: str, key: str, message: str) -> RegistryError:
    return RegistryError(f"{where}.{key}: {message}")


def _space(space: Mapping[str, Any], sampler: str, where: str) -> dict[str, dict[str, Any]]:
    checked = {}
    for path, dist in space.items():
        at = f"space.{path}"
        if not isinstance(path, str) or not path.strip() or path in ("seed", "trial", FOLD):
            raise _fail(where, at, "use a dotted override path such as task_wrapper.lr")
        kind = dist.get("type")
        if kind == "categorical":
            choices = dist.get("choices")
            if not isinstance(choices, list) or not choices or set(dist) != {"type", "choices"}:
                raise _fail(where, at, "a categorical needs `choices:`, a non-empty list, only")
            checked[path] = {"type": kind, "choices": choices}
            continue
        if kind not in ("float", "int"):
            raise _fail(where, f"{at}.type", f"{kind!r} is not one of {', '.join(TYPES)}")
        unknown = set(dist) - {"type", "low", "high", "log", "step"}
        if unknown:
            raise _fail(where, at, f"unknown key(s) {', '.join(sorted(unknown))}")
        if "low" not in dist or "high" not in dist:
            raise _fail(where, at, "give both `low` and `high`")
        low = _bound(dist["low"], "low", f"{where}.{at}")
        high = _bound(dist["high"], "high", f"{where}.{at}")
        log = dist.get("log", False)
        if not isinstance(log, bool):
            raise _fail(where, f"{at}.log", f"must be true or false, got {log!r}")
        if not low < high:
            raise _fail(where, at, f"`low` ({low}) must be below `high` ({high})")
        if log and low <= 0:
            raise _fail(where, f"{at}.low", f"a log range needs `low` > 0, got {low}")
        entry: dict[str, Any] = {"type": kind, "low": low, "high": high, "log": log}
        if kind == "int":
            if not (isinstance(low, int) and isinstance(high, int)):
                raise _fail(where, at, f"an int range needs integer bounds, got {low}..{high}")
        else:
            entry["low"], entry["high"] = float(low), float(high)
        if "step" in dist:
            step = number(dist["step"])
            if log or isinstance(step, bool) or not isinstance(step, int | float) or step <= 0:
                raise _fail(where, f"{at}.step", "a positive number, and not with `log: true`")
            entry["step"] = step
        if sampler == "grid" and (kind == "float" and "step" not in entry):
            raise _fail(
                where,
                at,
                "the grid sampler enumerates its values: make it categorical, an int, or give "
                "the float range a `step`",
            )
        checked[path] = entry
    return checked


def grid_values(dist: Mapping[str, Any]) -> list[Any]:
    """The values a grid sampler tries for one parameter."""
    if dist["type"] == "categorical":
        return list(dist["choices"])
    step = dist.get("step", 1)
    count = math.floor((dist["high"] - dist["low"]) / step + 1e-9) + 1
    values = [dist["low"] + i * step for i in range(count)]
    return [round(v, 12) if isinstance(v, float) else v for v in values]


def parse_search(search: Mapping[str, Any], jobs: tuple[str, ...], where: str) -> SearchSpec:
    """Check an experiment's `search:` (the schema has checked the types) and return it.

    `where` starts every message ("Registry configs/projects/p.yaml: at experiments.e.search").
    """
    from dltemplate.results.metric_policy import direction

    if importlib.util.find_spec("optuna") is None:  # found, not imported: the parse stays cheap
        raise RegistryError(
            f"{where}: a search needs Optuna, which is not installed; "
            "pip install -e '.[search]' (or pip install optuna)"
        )
    trials, parallel = search["trials"], search.get("parallel", 1)
    if parallel > trials:
        raise _fail(where, "parallel", f"{parallel} is more than `trials` ({trials})")
    sampler = search.get("sampler", "tpe")
    if sampler not in SAMPLERS:
        raise _fail(where, "sampler", f"{sampler!r} is not one of {', '.join(SAMPLERS)}")
    metric = search["metric"]
    stage = metric.split("/", 1)[0]
    if stage not in ("val", "test") or "/" not in metric:
        raise _fail(where, "metric", f"{metric!r} is not a val/ or test/ metric (e.g. test/acc)")
    if stage == "test" and "test" not in jobs:
        raise _fail(where, "metric", f"{metric} needs the test job; add test to `jobs:`")
    if "fit" not in jobs:
        raise _fail(where, "jobs", "a search trains its trials; add fit to `jobs:`")
    mode = direction(metric, search.get("metric_mode"))
    pruner = search.get("pruner", "none")
    pruner = dict(pruner) if isinstance(pruner, Mapping) else {"type": pruner}
    if pruner.get("type") not in PRUNERS:
        raise _fail(where, "pruner", f"{pruner.get('type')!r} is not one of {', '.join(PRUNERS)}")
    if pruner["type"] != "none":
        intermediate = pruner.get("intermediate") or search.get("intermediate")
        if not intermediate:
            raise _fail(
                where,
                "pruner",
                f"the {pruner['type']} pruner reads a metric every epoch: add "
                "`intermediate: val/<metric>` (e.g. val/loss) to the search",
            )
        if not str(intermediate).startswith("val/"):
            raise _fail(
                where,
                "intermediate",
                f"{intermediate!r} is not logged every epoch; prune on a val/ metric such as "
                "val/loss",
            )
        pruner["intermediate"] = intermediate
        pruner["mode"] = direction(intermediate)
    seeds = sweep_seeds(search)
    spec = SearchSpec(
        config=search["config"],
        space=_space(search["space"], sampler, where),
        trials=trials,
        parallel=parallel,
        metric=metric,
        metric_mode=mode,
        sampler=sampler,
        seed=search.get("seed"),
        pruner=pruner,
        seeds=seeds,
        overrides=dict(search.get("overrides") or {}),
        name=search.get("name", ""),
        folds=search.get("folds"),
    )
    # The name template is checked now with made-up values, not when a round has been asked.
    example = {p: d.get("low", (d.get("choices") or [0])[0]) for p, d in spec.space.items()}
    for run in spec.trial_runs(0, example, where):
        problem = name_problem(run["name"])
        if problem:
            raise _fail(where, "name", f"trial name {run['name']!r} is not valid: {problem}")
    runs = spec.trial_runs(0, example, where)
    if len({r["name"] for r in runs}) < len(runs):
        raise _fail(
            where,
            "name",
            f"{spec.template()!r} gives the runs of a trial one name; add {{seed}} and {{fold}}",
        )
    if "{trial" not in spec.template():
        raise _fail(where, "name", f"{spec.template()!r} must name the trial, e.g. t{{trial}}")
    return spec


def check_study(spec: SearchSpec, layout: ExperimentLayout, where: str) -> None:
    """Refuse settings that differ from those the experiment's study was started with."""
    path = Path(layout.search_spec)
    if not path.is_file():
        return
    try:
        started = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise RegistryError(f"{where}: {path} cannot be read ({exc}); restore it") from None
    now = spec.fixed()
    changed = [k for k in FIXED if started.get(k) != now.get(k)]
    if changed:
        raise RegistryError(
            f"{where}: {', '.join(changed)} differ(s) from the study in {layout.search} "
            "(started with other settings); start a new experiment for the new search, or "
            "restore the settings (only `trials` may grow)"
        )


def asked_trials(
    layout: ExperimentLayout, spec: SearchSpec, start: int = 0
) -> tuple[list[dict[str, Any]], int]:
    """The trials asked in rounds `start`, `start + 1`, ... so far, in order ([{number, params,
    runs: [{name, seed, overrides}]}]), from the round files that the round jobs wrote, and the
    number of rounds asked. Only the last round's file can change once written (it grows when
    `trials` grows), so a caller that has read rounds 0..start reads from `start` on."""
    trials = []
    k = start
    while k < spec.rounds:
        path = Path(layout.search_round(k))
        if not path.is_file():
            break
        trials.extend(json.loads(path.read_text())["trials"])
        k += 1
    return trials, k
