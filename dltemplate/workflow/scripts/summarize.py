"""Snakemake step: an experiment's summary tables and plot (dltemplate.results.summary)."""

from dltemplate.jobs.steps import run_step, summarize

run_step(snakemake, summarize)
