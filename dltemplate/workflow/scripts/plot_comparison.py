"""Snakemake step: an experiment's comparison chart and summary table."""

from dltemplate.jobs.steps import plot_comparison, run_step

run_step(snakemake, plot_comparison)
