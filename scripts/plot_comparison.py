"""Snakemake step: an experiment's comparison chart and summary table (results.plots)."""

from dltemplate.jobs.logs import job_log
from dltemplate.results.plots import write_experiment_comparison

with job_log(snakemake.log[0]):
    write_experiment_comparison(
        summary_csv=snakemake.input.summary,
        comparison_png=snakemake.output.chart,
        summary_html=snakemake.output.table,
        modes=snakemake.params.modes,
    )
