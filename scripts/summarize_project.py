"""Snakemake step: a project's summary, one row per experiment (see dltemplate.results.summary)."""

from dltemplate.jobs.logs import job_log
from dltemplate.results.summary import write_project_summary

with job_log(snakemake.log[0]):
    write_project_summary(
        project=snakemake.params.project,
        out_csv=snakemake.output.csv,
        out_md=snakemake.output.md,
    )
