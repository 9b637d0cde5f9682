"""A project folder: the one whose pyproject.toml holds the marker `[tool.dltemplate]` (what
`dltemplate new` writes), found from any of its subfolders. The commands and the jobs work in
it, with it first on `sys.path`, so that its own packages (configs/, models/, wrappers/,
dataset_classes/) import as they do under `python main.py`."""

from __future__ import annotations

import os
import sys
from pathlib import Path

MARKER = "[tool.dltemplate]"


def is_project(folder: Path) -> bool:
    pyproject = folder / "pyproject.toml"
    try:
        lines = pyproject.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return False
    return any(line.strip() == MARKER for line in lines)


def find_root(start: Path) -> Path | None:
    """The project folder that holds `start` (or is it); None outside any project."""
    start = start.resolve()
    return next((folder for folder in (start, *start.parents) if is_project(folder)), None)


def enter(start: Path | None = None) -> Path:
    """Work in the project that holds `start` (the working folder by default), or in that
    folder itself when no project holds it (a folder of configs/ without a pyproject.toml);
    the project folder goes first on `sys.path`. Returns it."""
    start = Path.cwd() if start is None else start
    root = find_root(start) or start.resolve()
    if root != Path.cwd().resolve():
        os.chdir(root)
    on_path(root)
    return root


def on_path(root: Path) -> None:
    """`root` first on `sys.path` (once): where a job's or a command's project imports come from."""
    entry = str(root)
    if not sys.path or sys.path[0] != entry:
        if entry in sys.path:
            sys.path.remove(entry)
        sys.path.insert(0, entry)
