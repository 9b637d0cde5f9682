"""Snakemake step: fit one run (dltemplate.jobs.fit)."""

from dltemplate.jobs.steps import fit, run_step

run_step(snakemake, fit)
