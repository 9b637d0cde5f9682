"""Small record files written atomically: a reader sees the old file or the new one, never half."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import yaml

from dltemplate.errors import UserError


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write `text` to a temp file beside `path`, flush it to disk, then rename it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            # Name the record, for the job's one line: not its temp file, and write(2) and
            # fsync(2) (a full disk) name no file at all.
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise


def write_json_atomic(path: str | Path, data: Any) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def write_yaml_atomic(path: str | Path, data: Any) -> None:
    write_text_atomic(path, yaml.safe_dump(data, sort_keys=False))


def portable_path(path: str | Path) -> str:
    """`path` relative to the working directory (the project root) when it lies inside it, so
    that records stay valid when the project folder moves."""
    path = Path(path)
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


_REQUIRED = object()


def read_json(path: str | Path, default: Any = _REQUIRED) -> Any:
    """The JSON record at `path`, the one reader of every record. When it is missing or not
    valid JSON: `default` if one is given, else a UserError that says what to do."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        if default is not _REQUIRED:
            return default
        if isinstance(exc, FileNotFoundError):
            raise UserError(f"{path} does not exist; run the job that writes it first") from None
        reason = f"{path} cannot be read as JSON ({exc})"
        raise UserError(f"{reason}; rerun the job that wrote it") from None
