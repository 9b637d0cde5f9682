"""Fewer garbage-collection passes while Snakemake builds the DAG of a large sweep."""

from __future__ import annotations

import gc

YOUNG_OBJECTS_PER_PASS = 50_000  # Python's default: 700


def collect_garbage_less_often() -> None:
    """Take what is alive now out of Python's garbage-collection passes, and make passes rarer.

    Snakemake creates dozens of objects per job while it builds the DAG (files, wildcards,
    name lists), and Python's cyclic collector starts a pass every 700 new objects; its older
    generations then walk everything that survived, Snakemake's modules, its plugins' (pandas)
    and the registry included. Those live as long as the process, so freezing them costs
    nothing, and garbage cycles made later are still collected, only in larger batches.
    Called once, from the workflow (rules/common.smk), after the registry is loaded. Measured
    on a 1,000-run sweep: no-op rerun 5.6 s -> 4.0 s (median of 4), same peak memory.
    """
    gc.freeze()
    gc.set_threshold(YOUNG_OBJECTS_PER_PASS, 20, 20)
