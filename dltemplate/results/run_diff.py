"""What differs between two finished runs, from their folders alone (`main.py diff`, `reproduce`).

Compared: the overrides the fit ran with (its archived config's, `seed` apart), every path of
`hparams.yaml`, the seed, the archived config's source (a unified diff, module by module), the
environment of each job that both ran (commit, uncommitted changes, versions, CPU, GPUs, host;
dltemplate.results.environment), the installed packages, and the test metrics. Every section
holds only what differs: two runs with none differ in nothing.

Torch-free: reads records, YAML and archives as text.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dltemplate.config.archive import read_archive
from dltemplate.errors import UserError
from dltemplate.layout import JOB_TYPES, RunLayout
from dltemplate.records import (
    DONE_FIELDS,
    JOB_RECORD_FIELDS,
    damaged,
    read_record,
    read_yaml_record,
)
from dltemplate.results.environment import read_packages

SECTIONS = ("overrides", "hparams", "seed", "config", "environment", "packages", "metrics")
# The versions of a job's record that can explain another result (besides the commit, the
# uncommitted changes, GPUs, CPU, host and packages; not its pid, times or command line).
VERSIONS = ("dltemplate", "python", "torch", "lightning", "snakemake", "cuda", "cudnn")


class RunFolder:
    """A finished run's folder, read once: records, archive, hparams, metrics."""

    def __init__(self, key: str, layout: RunLayout) -> None:
        self.key, self.layout = key, layout
        folder = layout.path
        if not folder.is_dir():
            raise UserError(
                f"No run folder {folder} for {key}; list the runs with: main.py ls -p "
                f"{layout.names[0]} -e {layout.names[1]}"
            )
        self.records = {
            job: record
            for job in JOB_TYPES
            if (record := read_record(layout.record(job), JOB_RECORD_FIELDS)) is not None
        }
        unfinished = [job for job, r in self.records.items() if r.get("status") != "done"]
        if unfinished or not Path(layout.done("fit")).is_file():
            job = unfinished[0] if unfinished else "fit"
            state = self.records.get(job, {}).get("status") or "not run"
            proj, exp, run = layout.names
            raise UserError(
                f"Run {key} is not finished: its {job} job is {state} ({layout.record(job)}); "
                f"finish it first: main.py exec -p {proj} -e {exp} -n {run}"
            )
        archive = next((Path(a) for a in layout.archives if Path(a).exists()), None)
        self.archive = read_archive(archive) if archive else None
        self.hparams = read_yaml_record(layout.hparams)
        if self.hparams is None:
            raise damaged(layout.hparams, "it is missing, though the run's fit is done")
        test = read_record(layout.done("test"), DONE_FIELDS) or {}
        self.metrics: dict[str, Any] = test.get("metrics") or {}

    @property
    def overrides(self) -> dict[str, Any]:
        found = dict(self.archive.overrides) if self.archive else {}
        found.pop("seed", None)
        return found

    def sources(self) -> dict[str, str]:
        """The archived modules' sources by module name."""
        if self.archive is None:
            return {}
        return {m.name: m.source for m in self.archive.sorted_modules()}

    def environment(self, job: str) -> dict[str, Any]:
        """What one job ran with that can explain another result, from its record."""
        record = self.records.get(job, {})
        git, versions = record.get("git") or {}, record.get("versions") or {}
        diff = git.get("diff")
        cpu = record.get("cpu") or {}
        return {
            "commit": git.get("commit"),
            "dirty": git.get("dirty"),
            "diff": self._text(diff) if diff else None,
            **{name: versions.get(name) for name in VERSIONS},
            "gpus": ", ".join(_gpu_name(g) for g in record.get("gpus") or []) or None,
            "cpu": f"{cpu.get('model')} x{cpu.get('cores')}" if cpu else None,
            "host": record.get("host"),
            "packages": (record.get("packages") or {}).get("sha256"),
        }

    def packages(self, job: str = "fit") -> dict[str, str]:
        file = (self.records.get(job, {}).get("packages") or {}).get("file")
        return read_packages(self._text(file) or "") if file else {}

    def _text(self, relative: str) -> str | None:
        path = self.layout.path / relative
        return path.read_text() if path.is_file() else None


def _gpu_name(gpu: Any) -> str:
    return str(gpu.get("name", "?")) if isinstance(gpu, Mapping) else str(gpu)


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """Nested mappings as `{dotted.path: value}`."""
    if not isinstance(data, Mapping):
        return {prefix: data}
    flat: dict[str, Any] = {}
    for key, value in data.items():
        flat.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def _pairs(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, list[Any]]:
    """`{key: [a's, b's]}` for every key whose values differ (None where one lacks it)."""
    keys = list(dict.fromkeys([*a, *b]))
    return {k: [a.get(k), b.get(k)] for k in keys if a.get(k) != b.get(k)}


def config_diff(a: RunFolder, b: RunFolder) -> list[str]:
    """A unified diff of the two archives' modules, module by module (`a/<module path>`)."""
    ours, theirs = a.sources(), b.sources()
    lines: list[str] = []
    for name in sorted(set(ours) | set(theirs)):
        left, right = ours.get(name, ""), theirs.get(name, "")
        if left != right:
            path = name.replace(".", "/") + ".py"
            lines += difflib.unified_diff(
                left.splitlines(), right.splitlines(), f"a/{path}", f"b/{path}", lineterm=""
            )
    return lines


def environment_diff(a: RunFolder, b: RunFolder) -> dict[str, dict[str, list[Any]]]:
    """`{job: {fact: [a's, b's]}}` for the jobs both ran; the diff patches compare by text
    and show as whether there is one."""
    found = {}
    for job in (j for j in JOB_TYPES if j in a.records and j in b.records):
        pairs = _pairs(a.environment(job), b.environment(job))
        if "diff" in pairs:
            pairs["diff"] = [_patch_label(a, job), _patch_label(b, job)]
        if pairs:
            found[job] = pairs
    return found


def _patch_label(run: RunFolder, job: str) -> str | None:
    """The job's patch file and the files it changes."""
    diff = ((run.records.get(job) or {}).get("git") or {}).get("diff")
    if not diff:
        return None
    files = [line[6:] for line in (run._text(diff) or "").splitlines() if line.startswith("+++ b/")]
    return f"{run.layout.folder}/{diff} ({len(files)} files: {', '.join(files)})"


def compare(a: RunFolder, b: RunFolder) -> dict[str, Any]:
    """Every difference between runs `a` and `b`, by section (empty sections left out)."""
    found = {
        "overrides": _pairs(a.overrides, b.overrides),
        "hparams": _pairs(flatten(a.hparams), flatten(b.hparams)),  # the seed has its own
        "seed": _pairs({"seed": a.hparams.get("seed")}, {"seed": b.hparams.get("seed")}),
        "config": config_diff(a, b),
        "environment": environment_diff(a, b),
        "packages": _pairs(a.packages(), b.packages()),
        "metrics": _pairs(a.metrics, b.metrics),
    }
    found["hparams"].pop("seed", None)
    return {k: v for k, v in found.items() if v}
