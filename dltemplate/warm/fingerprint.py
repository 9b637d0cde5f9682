"""What a warm server has loaded, so that it notices when that changed.

- The project's own source files that it imported: by content (sha256). An edit that keeps a
  file's size and modification time (`sed` then `touch -r`, a checkout or sync that restores
  times) is still an edit.
- Every other file of a module it imported (the libraries, their compiled extensions), every
  shared library mapped into it, the folders of installed packages (an install, upgrade or
  removal changes them) and the Python executable: by inode, size, modification and change
  time. The change time moves with every write and no tool can set it back, so a library
  edited in place is seen too. Settings files read on import (matplotlib's matplotlibrc): by
  content.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

_PACKAGE_FOLDERS = ("site-packages", "dist-packages")


class Fingerprint:
    """The files of the modules loaded in this process, and their state when first seen."""

    def __init__(self, project: Path) -> None:
        self.root = project
        self.project: set[str] = set()  # compared by content
        self.state: dict[str, tuple] = {}
        for path in (*_package_folders(), os.path.realpath(sys.executable)):
            self.state[path] = _stat(path)
        self.add_new_modules()

    def add_new_modules(self) -> None:
        """Track the files of the modules imported since the last call (a server's learned
        ones), the shared libraries mapped since, and the settings files read on import, as
        they are now."""
        project, others = _module_files(self.root)
        for path in (*project, *_settings_files()):
            if path not in self.state:
                self.project.add(path)
                self.state[path] = _content(path)
        for path in (*others, *_mapped_files()):
            self.state.setdefault(path, _stat(path))

    def what_changed(self) -> str | None:
        """A short phrase naming the first thing that changed since it was seen, or None."""
        for path, then in self.state.items():
            now = _content(path) if path in self.project else _stat(path)
            if now != then:
                return f"{_kind(path, self.project)} changed ({path})"
        return None


def _kind(path: str, project: set[str]) -> str:
    if path == os.path.realpath(sys.executable):
        return "the Python executable"
    if path in project:
        return "the project's code"
    return "installed packages" if path.endswith(_PACKAGE_FOLDERS) else "a preloaded library"


def _module_files(project: Path) -> tuple[list[str], list[str]]:
    """The source files of this process's imported modules: those in `project` (not in a
    virtual environment inside it), and the others."""
    root = str(project.resolve()) + os.sep
    files = set()
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if path:
            files.add(os.path.realpath(path))
    inside = sorted(p for p in files if p.startswith(root) and not _in_packages(p))
    return inside, sorted(files - set(inside))


def _mapped_files() -> list[str]:
    """The files mapped into this process (shared libraries: torch's, OpenBLAS, libgomp, CUDA's
    ...), which have no module of their own."""
    try:
        lines = Path("/proc/self/maps").read_text().splitlines()
    except OSError:
        return []
    fields = (line.split(maxsplit=5) for line in lines)  # address perms offset dev inode path
    paths = {f[5] for f in fields if len(f) == 6}
    return sorted(p for p in paths if p.startswith(os.sep) and not p.endswith(" (deleted)"))


def _settings_files() -> list[str]:
    """Settings that a preloaded library read when imported: matplotlib's matplotlibrc."""
    matplotlib = sys.modules.get("matplotlib")
    try:
        return [os.path.realpath(matplotlib.matplotlib_fname())] if matplotlib else []
    except Exception:  # its own lookup failing changes nothing here
        return []


def _in_packages(path: str) -> bool:
    return any(f"{os.sep}{name}{os.sep}" in path for name in _PACKAGE_FOLDERS)


def _package_folders() -> list[str]:
    return sorted(
        {
            os.path.realpath(entry)
            for entry in sys.path
            if entry and os.path.isdir(entry) and entry.rstrip(os.sep).endswith(_PACKAGE_FOLDERS)
        }
    )


def _content(path: str) -> tuple[str]:
    try:
        with open(path, "rb") as file:
            return (hashlib.sha256(file.read()).hexdigest(),)
    except OSError:
        return ("missing",)


def _stat(path: str) -> tuple[int, int, int, int]:
    try:
        info = os.stat(path)
    except OSError:
        return (-1, -1, -1, -1)
    return (info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)
