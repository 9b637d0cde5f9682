"""New inputs for a trained run's model: arrays read from `.npy`, `.npz` or `.csv` files, and
their check against the model's signature (dltemplate.jobs.export)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dltemplate.errors import UserError

ARRAY_SUFFIXES = (".npy", ".npz", ".csv")
NUMBER_KINDS = "biuf"  # NumPy's kinds of booleans, integers and floats
SHOWN_ROWS = 5  # bad rows an error names


class InputError(UserError):
    """A file of new inputs that cannot be read, or that does not fit the model."""


def load_array(path: str | Path) -> np.ndarray:
    """The array in `path`: a `.npy`, the first (or only) array of a `.npz`, or a `.csv` of
    numbers (a header row of names is skipped), one sample per row."""
    path = Path(path)
    if path.suffix not in ARRAY_SUFFIXES:
        raise InputError(
            f"Input {path}: not a {', '.join(ARRAY_SUFFIXES)} file; save the samples as one of "
            "those, or give the data wrapper an input_reader (docs/using-a-run.md)"
        )
    try:
        array = _read_array(path)
    except InputError:
        raise
    except (OSError, ValueError) as exc:
        raise InputError(f"Input {path} cannot be read: {exc}") from None
    if array.dtype.kind not in NUMBER_KINDS:
        raise InputError(
            f"Input {path} holds {array.dtype.name} values, not numbers; save the samples as "
            "an array of numbers"
        )
    return array


def _read_array(path: Path) -> np.ndarray:
    if path.suffix == ".npy":
        return np.load(path, allow_pickle=False)
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as arrays:
            if not arrays.files:
                raise InputError(f"Input {path} holds no arrays")
            return arrays[arrays.files[0]]
    return _read_csv(path)


def _read_csv(path: Path) -> np.ndarray:
    with path.open() as f:
        first = f.readline()
    try:
        [float(v) for v in first.strip().split(",")]
        skip = 0
    except ValueError:
        skip = 1  # a header row
    array = np.loadtxt(path, delimiter=",", skiprows=skip, dtype=np.float64, ndmin=2)
    return array


def check_finite(inputs: Sequence[torch.Tensor], source: str) -> None:
    """An InputError naming the first rows (counted from 0) that hold NaN or an infinity: the
    model would turn them into confident-looking predictions."""
    bad = torch.zeros(len(inputs[0]) if inputs else 0, dtype=torch.bool)
    for x in inputs:
        if x.dtype.is_floating_point and len(x) == len(bad):
            bad |= ~torch.isfinite(x.reshape(len(x), -1)).all(dim=1)
    rows = bad.nonzero().flatten().tolist()
    if rows:
        shown = ", ".join(map(str, rows[:SHOWN_ROWS])) + (", ..." if len(rows) > SHOWN_ROWS else "")
        raise InputError(
            f"{source} has NaN or infinite values in {len(rows)} row(s): {shown} (counting "
            "from 0); fix or drop those rows"
        )


def check_inputs(
    inputs: Sequence[torch.Tensor], expected: Sequence[Mapping[str, Any]], source: str
) -> tuple[torch.Tensor, ...]:
    """`inputs` cast to the signature's dtypes, or an InputError naming the signature."""
    wanted = ", ".join(
        f"{s['name']} {s['dtype']} [{', '.join(map(str, s['shape']))}]" for s in expected
    )
    if len(inputs) != len(expected):
        raise InputError(
            f"{source} gives {len(inputs)} input(s); the model takes {len(expected)}: {wanted}"
        )
    checked = []
    for x, spec in zip(inputs, expected, strict=True):
        dtype = getattr(torch, spec["dtype"])
        shape = [int(n) for n in spec["shape"][1:]]
        problem = None
        if x.dim() != len(shape) + 1 or list(x.shape[1:]) != shape:
            problem = f"shape {list(x.shape)}"
        elif x.dtype.is_floating_point != dtype.is_floating_point or x.dtype == torch.bool:
            problem = f"dtype {str(x.dtype).split('.')[-1]}"
        if problem:
            raise InputError(
                f"{source} has {problem}; the model takes {wanted} (batch: any number of samples)"
            )
        checked.append(x.to(dtype))
    return tuple(checked)
