"""Snakemake step: export an experiment's best run (dltemplate.jobs.export)."""

from dltemplate.jobs.steps import export_best, run_step

run_step(snakemake, export_best)
