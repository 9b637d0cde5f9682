"""Functions that Snakemake calls per job keep the signature Snakemake reads from them."""

from __future__ import annotations

import inspect

from snakemake.common import get_function_params

from dltemplate.workflow.per_job import per_job


def test_per_job_function_shows_snakemake_the_same_parameters() -> None:
    def get_inputs(wildcards, input, threads=1):
        return [wildcards, input, threads]

    before = dict(get_function_params(get_inputs))
    marked = per_job(get_inputs)
    assert marked is get_inputs and get_inputs("w", "i") == ["w", "i", 1]
    assert dict(get_function_params(get_inputs)) == before
    assert inspect.signature(get_inputs) is get_inputs.__signature__  # not worked out anew
