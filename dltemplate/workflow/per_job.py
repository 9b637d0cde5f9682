"""The functions that Snakemake calls once per job (input, params, threads, resources)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TypeVar

F = TypeVar("F", bound=Callable)


def per_job(function: F) -> F:
    """`function`, with its signature worked out once instead of at every call.

    Before each call of an input, params or resource function, Snakemake asks for the function's
    signature (it passes only the arguments the function takes), and `inspect.signature` works
    it out anew from the code each time. Snakemake takes the parameters from the function's
    `_overwrite_params` attribute when it has one (snakemake.common.get_function_params), and
    Python hands back a `__signature__` attribute as it is: setting both here spares each job
    that work (bench/dag_floor.py measures the DAG's build; the figures are in BENCHMARKS.md).
    """
    signature = inspect.signature(function)
    function.__signature__ = signature
    function._overwrite_params = signature.parameters  # FUNC_OVERWRITE_PARAMS_ATTR
    return function
