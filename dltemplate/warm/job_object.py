"""Snakemake's object of a job (what a `script:` receives as `snakemake`) as plain data, and
back, for a warm server's child to rebuild it exactly (torch-free: job scripts import it).

Its named lists (input, output, params, wildcards, resources, log) travel as their items and
names; every other attribute as it is. A value JSON would change (a tuple that would come back a
list, a Path, a set) raises wire.NotPlainData, and the job runs cold instead.
"""

from __future__ import annotations

from typing import Any

from snakemake import iocontainers

_NAMED_LISTS = {
    cls.__name__: cls
    for cls in (
        iocontainers.InputFiles,
        iocontainers.OutputFiles,
        iocontainers.Params,
        iocontainers.Wildcards,
        iocontainers.ResourceList,
        iocontainers.Log,
        iocontainers.Namedlist,
    )
}


def to_plain(job: iocontainers.Snakemake) -> dict[str, Any]:
    """The attributes of `job`, each {"plain": value} or {"named": class, "items", "names"}."""
    if type(job) is not iocontainers.Snakemake:
        raise TypeError(f"a Snakemake job object, got {type(job).__name__}")
    return {name: _field(value) for name, value in vars(job).items()}


def from_plain(fields: dict[str, Any]) -> iocontainers.Snakemake:
    job = iocontainers.Snakemake.__new__(iocontainers.Snakemake)
    for name, field in fields.items():
        setattr(job, name, field["plain"] if "plain" in field else _named_list(field))
    return job


def _field(value: Any) -> dict[str, Any]:
    if isinstance(value, iocontainers.Namedlist):
        kind = type(value).__name__
        if _NAMED_LISTS.get(kind) is not type(value):
            raise TypeError(f"an unknown named list, {kind}")
        names = [[name, start, end] for name, (start, end) in value._get_names()]
        return {"named": kind, "items": list(value), "names": names}
    return {"plain": value}


def _named_list(field: dict[str, Any]) -> iocontainers.Namedlist:
    named = _NAMED_LISTS[field["named"]]()
    named.extend(field["items"])
    for name, start, end in field["names"]:
        named._set_name(name, start, end)
    return named
