"""Numeric ids of projects and experiments, beside their names (the original design's `-p 1 -e 1`).

A project file holds its project's `id` and `next_experiment_id`; each experiment its `id`
within the project. The registry folder's `.next_project_id` holds the next project id, so
that an id stays with its project and is never given again, even after `main.py rm`.
Folders stay named by name. A registry without ids gets them in file order: in memory when it
is read (`main.py ls` shows them, writing nothing), in its files by the first command that
writes (dltemplate.registry.edit).

Works on plain mappings (PyYAML's dicts, ruamel's round-trip maps alike). No torch here.
"""

from __future__ import annotations

import re
from collections.abc import MutableMapping, Sequence
from pathlib import Path
from typing import Any

ID = "id"
NEXT_EXPERIMENT_ID = "next_experiment_id"
COUNTER_FILE = ".next_project_id"
_INTEGER = re.compile(r"[0-9]+")


def is_id(text: str) -> bool:
    """Whether `text` reads as an id (a plain non-negative integer)."""
    return bool(_INTEGER.fullmatch(text))


def read_counter(folder: str | Path) -> int:
    """The next project id that the registry folder's counter file holds (1 when none)."""
    path = Path(folder) / COUNTER_FILE
    try:
        text = path.read_text().strip()
    except OSError:
        return 1
    return int(text) if is_id(text) else 1


def write_counter(folder: str | Path, next_id: int) -> None:
    """Write the counter (callers hold the registry lock and write it with the edit)."""
    path = Path(folder) / COUNTER_FILE
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(f"{next_id}\n")
    tmp.replace(path)


def _put(mapping: MutableMapping[str, Any], key: str, value: int, position: int) -> None:
    """Set `key`, as a new key at `position` in a round-trip map (so `id:` reads first)."""
    if key not in mapping and hasattr(mapping, "insert"):
        mapping.insert(min(position, len(mapping)), key, value)
    else:
        mapping[key] = value


def _next_free(current: Any, ids: list[int]) -> int:
    candidates = [1, *(i + 1 for i in ids)]
    if isinstance(current, int) and not isinstance(current, bool):
        candidates.append(current)
    return max(candidates)


def assign_experiment_ids(project: MutableMapping[str, Any]) -> bool:
    """Give each experiment of `project` without an id the next one, in file order, and keep
    `next_experiment_id` past them all. True if anything changed."""
    experiments = project.get("experiments") or {}
    experiments = [e for e in experiments.values() if isinstance(e, MutableMapping)]
    taken = [e[ID] for e in experiments if ID in e]
    next_id = _next_free(project.get(NEXT_EXPERIMENT_ID), taken)
    changed = False
    for experiment in experiments:
        if ID not in experiment:
            _put(experiment, ID, next_id, 0)
            next_id += 1
            changed = True
    if project.get(NEXT_EXPERIMENT_ID) != next_id:
        _put(project, NEXT_EXPERIMENT_ID, next_id, 1)
        changed = True
    return changed


def new_experiment_id(project: MutableMapping[str, Any]) -> int:
    """The id for an experiment being added to `project` (whose ids are assigned)."""
    next_id = project[NEXT_EXPERIMENT_ID]
    project[NEXT_EXPERIMENT_ID] = next_id + 1
    return next_id


def assign_ids(
    projects: Sequence[MutableMapping[str, Any]], next_project_id: int
) -> tuple[int, list[int]]:
    """Give every project without an id, then every experiment without one, the next free id,
    in the order given (file order). Returns the next project id and the indexes of the
    projects that changed."""
    taken = [p[ID] for p in projects if ID in p]
    next_id = _next_free(next_project_id, taken)
    changed = []
    for index, project in enumerate(projects):
        touched = False
        if ID not in project:
            _put(project, ID, next_id, 0)
            next_id += 1
            touched = True
        if assign_experiment_ids(project):
            touched = True
        if touched:
            changed.append(index)
    return next_id, changed
