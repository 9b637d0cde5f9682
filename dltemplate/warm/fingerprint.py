"""What a warm server has loaded, so that it notices when that changed: the files of the
project's modules it imported, the folders of installed packages (pip changes them when it
installs, upgrades or removes one) and the Python executable."""

from __future__ import annotations

import os
import sys
from pathlib import Path

_PACKAGE_FOLDERS = ("site-packages", "dist-packages")


def _stat(path: str) -> tuple[str, int, int]:
    try:
        info = os.stat(path)
    except OSError:
        return (path, -1, -1)
    return (path, info.st_mtime_ns, info.st_size)


def project_module_files(project: Path) -> list[str]:
    """The source files of this process's imported modules that lie in `project` (not in a
    virtual environment inside it)."""
    root = str(project.resolve()) + os.sep
    files = set()
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if not path:
            continue
        path = os.path.realpath(path)
        if path.startswith(root) and not any(part in path for part in _PACKAGE_FOLDERS):
            files.add(path)
    return sorted(files)


def package_folders() -> list[str]:
    return sorted(
        {
            os.path.realpath(entry)
            for entry in sys.path
            if entry and os.path.isdir(entry) and entry.rstrip(os.sep).endswith(_PACKAGE_FOLDERS)
        }
    )


def fingerprint(files: list[str], folders: list[str]) -> list[tuple[str, int, int]]:
    return [_stat(p) for p in (*files, *folders, os.path.realpath(sys.executable))]


def what_changed(
    before: list[tuple[str, int, int]], after: list[tuple[str, int, int]]
) -> str | None:
    """A short phrase naming the first thing that changed, or None."""
    for old, new in zip(before, after, strict=True):
        if old != new:
            kind = (
                "the Python executable"
                if old[0] == os.path.realpath(sys.executable)
                else "installed packages"
                if old[0].endswith(_PACKAGE_FOLDERS)
                else "the project's code"
            )
            return f"{kind} changed ({old[0]})"
    return None
