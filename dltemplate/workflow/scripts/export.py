"""Snakemake step: export one run's best checkpoint (dltemplate.jobs.export)."""

from dltemplate.jobs.steps import export, run_step

run_step(snakemake, export)
