"""Snakemake step: ask the study for a round of trials (dltemplate.jobs.search)."""

from dltemplate.jobs.search import ask_step
from dltemplate.jobs.steps import run_step

run_step(snakemake, ask_step)
