"""Snakemake step: a project's project.json from its runs' run.json."""

from dltemplate.jobs.steps import project_record, run_step

run_step(snakemake, project_record)
