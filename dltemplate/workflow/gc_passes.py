"""Fewer garbage-collection passes while Snakemake builds the DAG of a large sweep."""

from __future__ import annotations

import gc

YOUNG_OBJECTS_PER_PASS = 50_000  # Python's default: 700
YOUNGER_PASSES_PER_OLDER_PASS = 20  # Python's default: 10, for each older generation


def collect_garbage_less_often() -> None:
    """Take what is alive now out of Python's garbage-collection passes, and make passes rarer.

    Snakemake creates dozens of objects per job while it builds the DAG (files, wildcards,
    name lists), and Python's cyclic collector starts a pass every 700 new objects; every
    tenth pass also walks the older generation, and so on up to everything that survived:
    Snakemake's modules, its plugins' (pandas) and the registry. Those stay for the whole
    Snakemake process, so freezing them costs nothing (along with whatever garbage is pending
    at that moment). Garbage cycles made later are still collected, in larger batches. Called
    once, from the workflow (rules/common.smk), after the registry is loaded: it holds for the
    rest of the Snakemake process (bench/orchestration.py measures the effect; BENCHMARKS.md).
    """
    gc.freeze()
    older = YOUNGER_PASSES_PER_OLDER_PASS
    gc.set_threshold(YOUNG_OBJECTS_PER_PASS, older, older)
