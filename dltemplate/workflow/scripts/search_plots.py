"""Snakemake step: draw a search's optimisation history and importances (dltemplate.jobs.search)."""

from dltemplate.jobs.search import plots_step
from dltemplate.jobs.steps import run_step

run_step(snakemake, plots_step)
