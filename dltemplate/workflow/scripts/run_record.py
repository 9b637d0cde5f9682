"""Snakemake step: a run's run.json and its plots (dltemplate.results)."""

from dltemplate.jobs.steps import run_record, run_step

run_step(snakemake, run_record)
