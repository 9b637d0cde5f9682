"""The paths `main.py predict` is given, checked before anything is read or written.

The output is refused where writing it would lose something or reach what the tool must not
write: inside the results root (a run's own predictions.csv is its predict job's output), the
input itself (by any spelling or link), a device or a system file (`/dev/full`, `/dev/stdout`),
or any existing file that is not a regular file. Torch-free.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from dltemplate.errors import UserError
from dltemplate.layout import results_root

SYSTEM_FOLDERS = (Path("/dev"), Path("/proc"), Path("/sys"))
ARRAY_HINT = "give a .npy, .npz or .csv file"


def resolved(path: Path, what: str) -> Path:
    """`path` with every link followed, or one line when it cannot be (a link loop)."""
    try:
        return path.resolve()
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop (Python 3.11, 3.12)
        message = f"{what} {path} cannot be followed ({exc}); fix or remove the link"
        raise UserError(message) from None


def blocking_file(path: Path) -> Path | None:
    """The nearest existing folder above `path` when it is not a folder (a path under a
    regular file), else None."""
    for parent in path.parents:
        if parent.exists():
            return None if parent.is_dir() else parent
    return None


def check_input_path(path: Path) -> None:
    """One line for an input that is a folder, lies under a file, or does not exist."""
    if path.is_dir():
        raise UserError(f"Input {path} is a folder; {ARRAY_HINT}")
    above = blocking_file(path)
    if above is not None:
        raise UserError(f"Input {path} cannot exist: {above} is a file, not a folder")
    if not path.is_file():
        raise UserError(f"Input {path} does not exist; {ARRAY_HINT}")


def check_output_path(output: Path, input_path: Path) -> None:
    """One line for an output that must not be written (see the module doc)."""
    where = f"Output {output}"
    target = resolved(output, "Output")
    as_given = Path(os.path.abspath(output))  # /dev/stdout leads to wherever stdout goes
    if any(p == f or p.is_relative_to(f) for p in (as_given, target) for f in SYSTEM_FOLDERS):
        raise UserError(
            f"{where} is a device or system file ({target}); give the path of a CSV file to write"
        )
    if output.exists() and not stat.S_ISREG(os.stat(output).st_mode):
        raise UserError(f"{where} exists and is not a regular file; give a new CSV file's path")
    if target == resolved(input_path, "Input"):
        raise UserError(f"{where} is the input itself; give another path for the predictions")
    root = resolved(Path(results_root()), "The results root")
    if target == root or target.is_relative_to(root):
        raise UserError(
            f"{where} lies inside the results root {results_root()}/, whose files the workflow "
            "writes (a run's predictions.csv is its predict job's); write it elsewhere"
        )
    above = blocking_file(output)
    if above is not None:
        raise UserError(f"{where} cannot be written: {above} is a file, not a folder")
