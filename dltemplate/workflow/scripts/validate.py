"""Snakemake step: validate one run's best checkpoint (dltemplate.jobs.evaluate)."""

from dltemplate.jobs.steps import run_step, validate

run_step(snakemake, validate)
