"""Snakemake step: test one run's best checkpoint (dltemplate.jobs.evaluate)."""

from dltemplate.jobs.steps import run_step, test

run_step(snakemake, test)
