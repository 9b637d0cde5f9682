"""Project files that parsed and passed the schema once are not parsed or checked again while
their text stays the same.

Snakemake reads the registry at every start: for a project of 1,000 runs, libyaml's parse and
the schema check take about 0.15 s of each dry run or rerun. What a check found depends only on
the file's text, the schema and the engine, so a file whose text hashes to what passed before
is read back from JSON (about 1 ms). One cache file per project file, in the user's cache
folder (`$XDG_CACHE_HOME/dltemplate/registry/`, or DLT_CACHE_DIR), owner-only; it is plain data,
never code. Whatever cannot be written or read back exactly (JSON has no dates and only text
keys) is simply checked every time.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from dltemplate import __version__, schemas

CACHE_ENV = "DLT_CACHE_DIR"


def cache_folder() -> Path:
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]) / "registry"
    home = os.environ.get("HOME") or os.path.expanduser("~")
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(home, ".cache")
    return Path(cache) / "dltemplate" / "registry"


@functools.cache
def _engine_stamp() -> str:
    """What a check depends on besides the text: the engine's version and its schemas."""
    digest = hashlib.sha256(__version__.encode())
    for path in sorted(schemas.FOLDER.glob("*.yaml")):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _key(text: str) -> str:
    return hashlib.sha256(f"{_engine_stamp()}\n{text}".encode()).hexdigest()


def _entry(path: Path) -> Path:
    name = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:32]
    return cache_folder() / f"{name}.json"


def checked(path: Path, text: str) -> Any | None:
    """The data of project file `path` if this `text` passed before, else None."""
    try:
        entry = json.loads(_entry(path).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(entry, dict) or entry.get("key") != _key(text):
        return None
    return entry.get("data")


def remember(path: Path, text: str, data: Any) -> None:
    """Keep `data`, parsed from `text` and checked, when JSON gives it back exactly."""
    try:
        encoded = json.dumps({"key": _key(text), "data": data})
    except (TypeError, ValueError):
        return
    if json.loads(encoded)["data"] != data:  # int keys, tuples ...: not kept
        return
    entry = _entry(path)
    try:
        entry.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with tempfile.NamedTemporaryFile("w", dir=entry.parent, delete=False) as f:
            f.write(encoded)
    except OSError:
        return
    try:
        os.replace(f.name, entry)
    except OSError:
        Path(f.name).unlink(missing_ok=True)
