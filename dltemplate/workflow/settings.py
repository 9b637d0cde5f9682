"""The workflow config (configs/workflow.yaml, and `--config key=value` on the command line),
validated against dltemplate/schemas/workflow.yaml when Snakemake parses the workflow."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dltemplate import schemas
from dltemplate.errors import UserError
from dltemplate.layout import RESULTS, use_results_root

SOURCE = "Workflow config (configs/workflow.yaml or --config)"
# Folders of the project that results must never be written into.
SOURCE_FOLDERS = (
    "configs",
    "dltemplate",
    "rules",
    "scripts",
    "wrappers",
    "models",
    "dataset_classes",
    "profiles",
    "envs",
    "report",
    "tests",
    "bench",
    "docs",
    ".git",
    ".snakemake",
    ".venv",
)
# Files that mark the top of a Python environment (a venv's, a conda environment's).
ENVIRONMENT_MARKS = ("pyvenv.cfg", "conda-meta")


def check_workflow_config(config: Mapping[str, Any]) -> Mapping[str, Any]:
    """Return `config`, or raise a UserError naming the key that is wrong and what is allowed."""
    errors = sorted(
        schemas.validator("workflow").iter_errors(dict(config)),
        key=lambda e: list(map(str, e.absolute_path)),
    )
    if errors:
        error = errors[0]
        raise UserError(f"{SOURCE}: at {schemas.key_of(error)}: {schemas.message_of(error)}")
    return config


def apply_output_dir(config: Mapping[str, Any], project: str | Path = ".") -> str:
    """Check `output_dir` and make it this process's results root; return it. Refused: a
    folder inside the project's sources or configs, the project folder itself, and a place
    that cannot be created or written."""
    output_dir = str(config.get("output_dir") or RESULTS)
    where = f"{SOURCE}: output_dir {output_dir!r}"
    project = Path(project).resolve()
    try:
        target = (project / output_dir).resolve()
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop (Python 3.11, 3.12)
        raise UserError(
            f"{where} cannot be followed to a folder ({exc}); fix or remove the link, or name "
            "another folder"
        ) from None
    if target == project:
        raise UserError(f"{where} is the project folder itself; name a folder for results")
    for folder in SOURCE_FOLDERS:
        if target == project / folder or target.is_relative_to(project / folder):
            raise UserError(
                f"{where} lies inside the project's {folder}/; results go to their own folder "
                "(the default `results`, or a scratch path)"
            )
    environment = python_environment_of(target, project)
    if environment is not None:
        raise UserError(
            f"{where} lies inside the Python environment {environment}; results go to their "
            "own folder (the default `results`, or a scratch path)"
        )
    existing = target
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(
            f"{where} cannot be created or written ({existing} is not a writable folder); "
            "choose another place or fix its permissions"
        )
    use_results_root(output_dir)
    return output_dir


def python_environment_of(folder: Path, project: Path) -> Path | None:
    """The Python environment (a venv, a conda environment, this interpreter's prefix) that
    `folder` (resolved) lies in, or None. One that holds the project itself does not count (a
    container's project under the interpreter's /usr/local)."""
    prefixes = {Path(p).resolve() for p in (sys.prefix, sys.base_prefix)}
    for place in (folder, *folder.parents):
        if project.is_relative_to(place):
            return None
        if place in prefixes or any((place / mark).exists() for mark in ENVIRONMENT_MARKS):
            return place
    return None
