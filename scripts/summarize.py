"""Snakemake step: an experiment's summary tables and plot (see dltemplate.results.summary)."""

from dltemplate.jobs.logs import job_log
from dltemplate.results.summary import write_experiment_summary

with job_log(snakemake.log[0]):
    write_experiment_summary(
        experiment=snakemake.params.experiment,
        out_csv=snakemake.output.csv,
        out_points=snakemake.output.points,
        out_md=snakemake.output.md,
        out_png=snakemake.output.png,
    )
