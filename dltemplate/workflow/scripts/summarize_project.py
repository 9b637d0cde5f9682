"""Snakemake step: a project's summary, one row per experiment."""

from dltemplate.jobs.steps import run_step, summarize_project

run_step(snakemake, summarize_project)
