"""Experiment summaries: one row per run, read from the runs' own `.done` records."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from dltemplate.records import write_text_atomic


def read_record(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def run_row(run_dir: Path) -> dict[str, Any]:
    """A run's summary row: its test metrics, fit epochs and time, where they exist."""
    row: dict[str, Any] = {"run": run_dir.name}
    fit = read_record(run_dir / "fit.done") or {}
    test = read_record(run_dir / "test.done") or {}
    row.update(test.get("metrics", {}))
    if fit:
        row["epochs"] = fit.get("epochs")
        row["fit_seconds"] = fit.get("fit_seconds")
    return row


def write_experiment_summary(
    *, experiment_dir: str | Path, done_files: list[str], out_csv: str | Path
) -> list[dict]:
    """Write `summary.csv` with a row per run that has `.done` files among `done_files`."""
    run_dirs = sorted({Path(f).parent for f in done_files})
    rows = [run_row(d) for d in run_dirs]
    columns: list[str] = ["run"]
    for row in rows:
        columns += [k for k in row if k not in columns]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(out_csv, buffer.getvalue())
    return rows
