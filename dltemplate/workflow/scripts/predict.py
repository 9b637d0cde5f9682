"""Snakemake step: predict with one run's best checkpoint (dltemplate.jobs.predict)."""

from dltemplate.jobs.steps import predict, run_step

run_step(snakemake, predict)
