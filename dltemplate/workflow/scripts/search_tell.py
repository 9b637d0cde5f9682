"""Snakemake step: tell the study the results of a round's trials (dltemplate.jobs.search)."""

from dltemplate.jobs.search import tell_step
from dltemplate.jobs.steps import run_step

run_step(snakemake, tell_step)
