"""Small record files written atomically: a reader sees the old file or the new one, never half."""

from __future__ import annotations

import datetime
import json
import math
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from dltemplate.errors import UserError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write `text` to a temp file beside `path`, flush it to disk, then rename it over `path`.
    The file gets the mode a plain `open` would give it (0666 less the umask), not the 0600 of
    the temporary file, so colleagues who share the results can read them."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "w") as f:  # owns fd from here: closed whatever happens
            os.fchmod(f.fileno(), 0o666 & ~_umask())
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


def strict(data: Any, where: str = "", replaced: dict[str, str] | None = None) -> Any:
    """`data` with every NaN or infinity replaced by None, noting each in `replaced` (dotted
    path -> "nan", "inf" or "-inf"): records are strict JSON, which any parser reads (Python's
    json would write the non-standard NaN and Infinity)."""
    if isinstance(data, float) and not math.isfinite(data):
        if replaced is not None:
            replaced[where or "(value)"] = str(data)
        return None
    if isinstance(data, dict):
        return {
            k: strict(v, f"{where}.{k}" if where else str(k), replaced) for k, v in data.items()
        }
    if isinstance(data, list | tuple):
        return [strict(v, f"{where}[{i}]", replaced) for i, v in enumerate(data)]
    return data


def write_json_atomic(path: str | Path, data: Any) -> None:
    """Write `data` as strict JSON, atomically. Non-finite numbers become null; a record (a
    JSON object) then says which were which under "nonfinite"."""
    replaced: dict[str, str] = {}
    data = strict(data, replaced=replaced)
    if replaced and isinstance(data, dict):
        data["nonfinite"] = replaced
    text = json.dumps(data, indent=2, sort_keys=False, allow_nan=False)
    write_text_atomic(path, text + "\n")


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


# The fields of a run's records that the commands read, with the types they must have (None
# is allowed: a field not known when the job ran). A record whose field has another type was
# damaged (edited by hand, or a fault), and is named as such.
NUMBER = (int, float)
JOB_RECORD_FIELDS = {
    "status": str,
    "started": str,
    "seconds": NUMBER,
    "host": str,
    "git": dict,
    "versions": dict,
    "packages": dict,
    "cpu": dict,
    "gpus": list,
}
DONE_FIELDS = {
    "metrics": dict,
    "epochs": int,
    "global_step": int,
    "best_checkpoint": str,
    "checkpoint": str,
    "predictions": str,
    "rows": int,
    "fit_seconds": NUMBER,
}
DAMAGED_HINT = "restore it, or run the job that wrote it again"


def damaged(path: str | Path, reason: str) -> UserError:
    """The one line for a record that exists but cannot be used as it is."""
    return UserError(f"{path} is damaged: {reason}; {DAMAGED_HINT}")


def read_record(path: str | Path, fields: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """A run's JSON record: None when it does not exist, a UserError naming it as damaged when
    it is not a JSON object (a truncated file) or one of `fields` has the wrong type."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise damaged(path, f"not valid JSON ({exc})") from None
    return checked_record(path, data, fields or {})


def read_yaml_record(path: str | Path) -> dict[str, Any] | None:
    """A run's YAML record (hparams.yaml): None when it does not exist; damaged when it does
    not parse or is not a mapping."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise damaged(path, f"not valid YAML ({reason})") from None
    return checked_record(path, {} if data is None else data, {})


def _is_number(value: Any) -> bool:
    """An int or a float, not a bool (a metric that was NaN is None: see `strict`)."""
    return isinstance(value, NUMBER) and not isinstance(value, bool)


def checked_record(path: Path, data: Any, fields: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise damaged(path, f"it holds a {type(data).__name__}, not a mapping")
    for key, kind in fields.items():
        value = data.get(key)
        if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
            # bool is an int to isinstance; no field here is a bool
            wanted = " or ".join(t.__name__ for t in (kind if isinstance(kind, tuple) else (kind,)))
            raise damaged(path, f"its {key!r} is {type(value).__name__} {value!r}, not {wanted}")
    metrics = data.get("metrics")
    bad = [k for k, v in (metrics or {}).items() if v is not None and not _is_number(v)]
    if bad:
        raise damaged(path, f"its metric {bad[0]!r} is not a number")
    return data


def now() -> str:
    """The current local time as ISO 8601 with its UTC offset, to the second: every record's
    timestamps."""
    return datetime.datetime.now().astimezone().isoformat(timespec="seconds")


def _existing_ancestor(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def unwritable(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """The places among `paths` that this user cannot write: an existing file (which a job or
    an edit would replace) or its folder, or for a missing path the nearest existing folder
    above it, where it would be created.

    `os.access` asks the kernel, which says no for an immutable file or folder even to root,
    and yes to root for a merely read-only one (root writes there anyway)."""
    refused: dict[Path, None] = {}
    for name in paths:
        path = Path(name)
        if path.is_symlink() or path.exists():
            if not os.access(path.parent, os.W_OK):
                refused[path.parent] = None
            elif path.is_file() and not os.access(path, os.W_OK):
                refused[path] = None
        else:
            folder = _existing_ancestor(path.parent)
            if not os.access(folder, os.W_OK):
                refused[folder] = None
    return list(refused)
