"""Runs made with another version of the engine: kept, named, and rerun only when asked.

An upgrade of the engine reruns nothing by itself (docs/upgrading.md): what decides that a job
is out of date is its run inputs (dltemplate.workflow.job_spec). Each job records the engine
version it ran with (`versions.dltemplate` in records/<job>.json; dltemplate.results.environment)
and the run inputs it was given (`run_inputs`). From those records:

- `note`: the line that Snakemake's head prints while it parses the workflow (`snakemake -n`
  too) when declared runs were made with another version, as information.
- `engine_rerun`: the run input through which the opt-in `rerun_on_engine_change` reruns them.
  Snakemake remembers the params each job last ran with and reruns a job whose params differ, so
  the value stays what the job last got (the job writes it into its record) and changes only to
  ask for a rerun: with the opt-in, for a job made with another version, it becomes
  "<that version> -> <this one>". Turning the opt-in on or off reruns nothing else, and a job
  that it reran is up to date with it and without it.

Cheap: one small JSON file per declared job, read once per process, and the opt-in's value needs
it anyway. Torch-free.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

from dltemplate import __version__
from dltemplate.layout import RunLayout
from dltemplate.records import read_json
from dltemplate.registry.model import Run

SETTING = (
    "rerun_on_engine_change"  # the workflow config's opt-in (dltemplate/schemas/workflow.yaml)
)
ENGINE = "dltemplate"  # the engine's name among a job record's `versions`
# The version of a job whose record names none: it was made before versions were recorded.
UNRECORDED_VERSION = "0.1.0"
NAMES_SHOWN = 3  # runs named per version in the note; the others are counted

_RECORDS: dict[str, dict[str, Any] | None] = {}


def rerun_asked(config: Mapping[str, Any]) -> bool:
    """Whether the workflow config asks to rerun the jobs made with another engine version."""
    return config.get(SETTING) in (True, "true")  # --config gives text


def job_record(run_dir: str, job: str) -> dict[str, Any] | None:
    """The record of the run's job as this process first read it (a job that runs later writes
    its own record only), or None when there is none or it is damaged."""
    key = os.path.join(os.getcwd(), run_dir, job)
    if key not in _RECORDS:
        path = RunLayout.at(run_dir).record(job)
        record = read_json(path, default=None) if os.path.isfile(path) else None
        _RECORDS[key] = record if isinstance(record, dict) else None
    return _RECORDS[key]


def made_with(record: Mapping[str, Any] | None) -> str | None:
    """The engine version that the job of `record` ran with (None without a record)."""
    if record is None:
        return None
    versions = record.get("versions")
    version = versions.get(ENGINE) if isinstance(versions, dict) else None
    return version if isinstance(version, str) else UNRECORDED_VERSION


def engine_rerun(
    record: Mapping[str, Any] | None, asked: bool, current: str = __version__
) -> str | None:
    """The job's `engine_rerun` run input: what its record says it was given last, unless a
    rerun on an engine change is `asked` and the job was made with another version: then a new
    value, which reruns it (" (again)" when the job ran with the older version since the last
    such rerun, so that the value differs from the last one)."""
    given = record.get("run_inputs") if record is not None else None
    last = given.get("engine_rerun") if isinstance(given, dict) else None
    made = made_with(record)
    if not asked or made is None or made == current:
        return last
    wanted = f"{made} -> {current}"
    return wanted if wanted != last else f"{wanted} (again)"


def other_versions(runs: Iterable[Run], current: str = __version__) -> dict[str, list[str]]:
    """`{version: [run keys]}` of the runs that have a finished job made with another engine
    version than `current`."""
    found: dict[str, list[str]] = {}
    for run in runs:
        records = (job_record(run.folder, job) for job in run.jobs)
        made = {made_with(r) for r in records if r is not None and r.get("status") == "done"}
        for version in sorted(made - {current}):
            found.setdefault(version, []).append(run.key)
    return found


def note(runs: Iterable[Run], asked: bool, current: str = __version__) -> str | None:
    """One line naming the runs made with another engine version, or None when there are none."""
    found = other_versions(runs, current)
    if not found:
        return None
    count = len({key for keys in found.values() for key in keys})
    made = "; ".join(f"{version}: {_names(keys)}" for version, keys in sorted(found.items()))
    if asked:
        then = f"Those among the targets rerun ({SETTING})"
    else:
        then = f"They are kept; to rerun them: --config {SETTING}=true"
    runs_were = "1 run was" if count == 1 else f"{count} runs were"
    return (
        f"Note: {runs_were} made with another version of the engine than this one "
        f"(dltemplate {current}): {made}. {then} (docs/upgrading.md)"
    )


def _names(keys: list[str]) -> str:
    shown = ", ".join(keys[:NAMES_SHOWN])
    more = len(keys) - NAMES_SHOWN
    return f"{shown} and {more} more" if more > 0 else shown


def clear_cache() -> None:
    """Forget the records read (tests)."""
    _RECORDS.clear()


__all__ = ["SETTING", "engine_rerun", "made_with", "note", "rerun_asked"]
