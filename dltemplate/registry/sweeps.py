"""Sweeps: one registry entry that declares many runs (grid, list, random samples, seeds).

An experiment's `sweep:` key is expanded when the registry loads, into ordinary runs: each has
its own name, folder, records and targets, exactly as if it had been written out under `runs:`.
The points of a sweep are the grid's Cartesian product, then each `list` entry, then the
`random` samples; every point is repeated over `seeds`. Expansion is deterministic (the random
samples come from their own seed), so adding grid values, list entries or samples (a larger
`n`) leaves the existing runs' names and overrides alone: Snakemake trains only the new ones.

Torch-free and cheap: Snakemake runs this while it parses the workflow.
"""

from __future__ import annotations

import itertools
import math
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dltemplate.errors import RegistryError
from dltemplate.registry.names import name_problem

# Text that reads as a float: a random range's bounds may be written as text ("1e-3").
_FLOAT_TEXT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?|[-+]?(inf|Infinity)|nan")
_PLACEHOLDER = re.compile(r"\{([^{}:]*)(?::([^{}]*))?\}")
RANDOM_KEYS = {"choices", "low", "high", "log", "digits"}
# k-fold cross-validation (`folds: K`): each point's runs set these data-wrapper arguments, and
# the summaries average over folds as over seeds (wrappers.BasicDataWrapper takes both).
FOLD, FOLDS = "data_wrapper.fold", "data_wrapper.folds"
MAX_RUNS = 100_000  # per sweep: far beyond what a workflow can schedule, short of a typo's 10**9


@dataclass(frozen=True)
class SweepRun:
    """One run of a sweep: its name and description, and its full overrides."""

    name: str
    description: str
    overrides: dict[str, Any]  # the sweep's base overrides, the point's values, the seed


def number(value: Any) -> Any:
    """`value`, or the float that its text spells (`"1e-3"` -> 0.001)."""
    if isinstance(value, str) and _FLOAT_TEXT.fullmatch(value.strip()):
        return float(value)
    return value


def format_value(value: Any, spec: str = "") -> str:
    """The stable, path-safe text of an override value in a run name.

    Floats keep their shortest round-trip form (0.001 -> "0.001", 1e-05 -> "1e-05", 1e+16 ->
    "1e16"), booleans are "true"/"false", lists join their items with "_". `spec` is a Python
    format spec (`{task_wrapper.lr:.0e}`) for those who want another form.
    """
    if spec:
        text = format(value, spec)
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, float):
        text = repr(value)
    elif value is None:
        text = "none"
    elif isinstance(value, list | tuple):
        text = "_".join(format_value(v) for v in value)
    else:
        text = str(value)
    return text.replace("e+", "e")


def _show(text: object) -> str:
    """`text` as it is when it prints on one line, else quoted: messages stay one line."""
    text = str(text)
    return text if text.isprintable() else repr(text)


def fill_template(template: str, values: Mapping[str, Any], *, where: str, what: str) -> str:
    """Replace every `{path}` or `{path:spec}` in `template` by the formatted override value."""

    def replace(match: re.Match) -> str:
        path, spec = match.group(1).strip(), match.group(2) or ""
        if path not in values:
            known = ", ".join(_show(k) for k in values) or "none"
            raise RegistryError(
                f"{where}: {what} {template!r} uses {{{path}}}, which this run does not set "
                f"(its override paths: {known})"
            )
        try:
            return format_value(values[path], spec)
        except (TypeError, ValueError, OverflowError, MemoryError) as exc:
            raise RegistryError(
                f"{where}: {what} {template!r}: cannot format {path}={values[path]!r} "
                f"with {spec!r}: {_show(exc)}"
            ) from None

    text = _PLACEHOLDER.sub(replace, template)
    if "{" in text or "}" in text:
        raise RegistryError(
            f"{where}: {what} {template!r} has an unmatched brace; placeholders look like "
            "{task_wrapper.lr}"
        )
    return text


def default_name_template(paths: list[str], has_seeds: bool, has_folds: bool = False) -> str:
    """`lr{task_wrapper.lr}-batch_size{data_wrapper.batch_size}-s{seed}` from a point's paths
    (and `-f{fold}` with folds)."""
    parts = [f"{p.rsplit('.', 1)[-1]}{{{p}}}" for p in paths]
    if has_seeds:
        parts.append("s{seed}")
    if has_folds:
        parts.append("f{fold}")
    return "-".join(parts)


def fold_values(folds: int | None) -> list[dict[str, int]]:
    """The overrides of each fold of `folds: K` ([{}] without folds)."""
    if not folds:
        return [{}]
    return [{FOLDS: folds, FOLD: i} for i in range(folds)]


def _bound(value: Any, key: str, where: str) -> float | int:
    value = number(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RegistryError(f"{where}: `{key}` must be a number, got {value!r}")
    return value


def sample_value(rng: random.Random, spec: Any, where: str) -> Any:
    """One draw from a `random.params` entry: a list of choices, `{choices: [...]}`, or
    `{low, high}` (integers when both bounds are integers; `log: true` for log-uniform;
    `digits`: significant digits of float draws, default 3)."""
    if isinstance(spec, list):
        spec = {"choices": spec}
    unknown = set(spec) - RANDOM_KEYS
    if unknown:
        raise RegistryError(
            f"{where}: unknown key(s) {', '.join(sorted(unknown))}; "
            "use a list of choices, {choices: [...]}, or {low, high, log, digits}"
        )
    u = rng.random()  # one draw per value keeps the stream stable when specs change form
    if "choices" in spec:
        choices = spec["choices"]
        if not isinstance(choices, list) or not choices or set(spec) != {"choices"}:
            raise RegistryError(f"{where}: `choices` must be a non-empty list and stand alone")
        return choices[min(int(u * len(choices)), len(choices) - 1)]
    if "low" not in spec or "high" not in spec:
        raise RegistryError(f"{where}: give both `low` and `high` (or a list of choices)")
    low, high = _bound(spec["low"], "low", where), _bound(spec["high"], "high", where)
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise RegistryError(f"{where}: `log` must be true or false, got {log!r}")
    if not low < high:
        raise RegistryError(f"{where}: `low` ({low}) must be below `high` ({high})")
    if log and low <= 0:
        raise RegistryError(f"{where}: a log-uniform range needs `low` > 0, got {low}")
    if isinstance(low, int) and isinstance(high, int):  # integers, `high` included
        if "digits" in spec:
            raise RegistryError(f"{where}: `digits` applies to float ranges only")
        if log:
            lo, hi = math.log(low), math.log(high + 1)
            try:
                return max(low, min(high, int(math.exp(lo + u * (hi - lo)))))
            except OverflowError:
                raise RegistryError(f"{where}: the range {low}..{high} is too wide") from None
        return min(high, low + int(u * (high - low + 1)))
    digits = spec.get("digits", 3)
    if isinstance(digits, bool) or not isinstance(digits, int) or not 1 <= digits <= 17:
        raise RegistryError(f"{where}: `digits` must be an integer from 1 to 17, got {digits!r}")
    try:
        if log:
            value = math.exp(math.log(low) + u * (math.log(high) - math.log(low)))
        else:
            value = low + u * (high - low)
        value = float(f"{value:.{digits}g}")
    except OverflowError:
        raise RegistryError(f"{where}: the range {low}..{high} is too wide for a float") from None
    if not math.isfinite(value):
        raise RegistryError(f"{where}: the range {low}..{high} gives {value}; use finite bounds")
    return value


def _check_paths(paths: Any, where: str) -> None:
    for path in paths:
        if not isinstance(path, str) or not path.strip():
            raise RegistryError(
                f"{where}: override path {_show(repr(path))} is not a dotted path such as "
                "task_wrapper.lr"
            )


def sweep_points(spec: Mapping[str, Any], where: str) -> list[dict[str, Any]]:
    """The points of a sweep (override values, no seed): grid, then list, then random."""
    points: list[dict[str, Any]] = []
    grid = spec.get("grid") or {}
    _check_paths(grid, f"{where}.grid")
    for i, entry in enumerate(spec.get("list") or []):
        _check_paths(entry, f"{where}.list.{i}")
    sampled = spec.get("random")
    if sampled:
        _check_paths(sampled["params"], f"{where}.random.params")
    size = math.prod(len(v) for v in grid.values()) if grid else 0
    size += len(spec.get("list") or []) + (sampled["n"] if sampled else 0)
    seeds = spec.get("seeds")
    size *= (seeds if isinstance(seeds, int) else len(seeds)) if seeds else 1
    size *= spec.get("folds") or 1
    if size > MAX_RUNS:
        raise RegistryError(
            f"{where}: the sweep declares {size} runs (at most {MAX_RUNS}); shrink the grid, "
            "n or seeds"
        )
    if grid:
        paths = list(grid)
        for values in itertools.product(*(grid[p] for p in paths)):
            points.append(dict(zip(paths, values, strict=True)))
    for entry in spec.get("list") or []:
        points.append(dict(entry))
    if sampled:
        rng = random.Random(sampled.get("seed", 0))
        for _ in range(sampled["n"]):
            points.append(
                {
                    path: sample_value(rng, dist, f"{where}.random.params.{path}")
                    for path, dist in sampled["params"].items()
                }
            )
    for point in points:
        if "seed" in point:
            raise RegistryError(
                f"{where}: `seed` is swept with the `seeds:` key (e.g. seeds: [0, 1, 2]), "
                "not in grid, list or random"
            )
        if spec.get("folds") and {FOLD, FOLDS} & set(point):
            raise RegistryError(
                f"{where}: {FOLD} and {FOLDS} are set by the `folds:` key, not in grid, list or "
                "random"
            )
    return points or [{}]


def sweep_seeds(spec: Mapping[str, Any]) -> list[int | None]:
    seeds = spec.get("seeds")
    if seeds is None:
        return [None]
    return list(range(seeds)) if isinstance(seeds, int) else list(seeds)


def expand_sweep(spec: Mapping[str, Any], *, where: str) -> list[SweepRun]:
    """The runs of a sweep, in order: points (grid, list, random), each over its seeds.

    `where` starts every error message, e.g. "Registry configs/projects/p.yaml: at
    experiments.e.sweep". Names are checked like any run name and must be unique (case too).
    """
    points = sweep_points(spec, where)
    seeds = sweep_seeds(spec)
    base = dict(spec.get("overrides") or {})
    has_seeds = spec.get("seeds") is not None
    folds = fold_values(spec.get("folds"))
    if not spec.get("name") and points == [{}] and not has_seeds and folds == [{}]:
        raise RegistryError(
            f"{where}: the sweep has no grid, list, random or seeds, so it declares one run; "
            "declare it under `runs:` instead"
        )
    description = spec.get("description")
    runs: list[SweepRun] = []
    seen: dict[str, dict[str, Any]] = {}
    for point in points:
        # Without a `name`, each point names its own swept values: lr0.1-hidden_dim16-s0.
        template = spec.get("name") or default_name_template(list(point), has_seeds, folds != [{}])
        for seed, fold in itertools.product(seeds, folds):
            varied = {**point, **({"seed": seed} if seed is not None else {}), **fold}
            overrides = {**base, **varied}
            values = {**overrides, **({"fold": fold[FOLD]} if fold else {})}
            name = fill_template(template, values, where=where, what="name template")
            problem = name_problem(name)
            if problem:
                raise RegistryError(
                    f"{where}.name: run name {name!r} (from {template!r}) is not valid: "
                    f"{problem}; change the template"
                )
            other = seen.get(name.lower())
            if other is not None:
                raise RegistryError(
                    f"{where}.name: the template {template!r} gives the name {name!r} to two "
                    f"runs ({_describe(other)} and {_describe(varied)}); add the "
                    "override path that tells them apart, e.g. {seed}"
                )
            seen[name.lower()] = varied
            if description:
                text = fill_template(description, values, where=where, what="description")
            else:
                text = f"sweep run {_describe(varied)}"
            runs.append(SweepRun(name=name, description=text, overrides=overrides))
    return runs


def _describe(values: Mapping[str, Any]) -> str:
    return ", ".join(_show(f"{k}={format_value(v)}") for k, v in values.items()) or "the base point"
