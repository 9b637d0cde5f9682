"""Snakemake step: an experiment's summary table (see dltemplate.summary)."""

from dltemplate.jobs.logs import job_log
from dltemplate.summary import write_experiment_summary

with job_log(snakemake.log[0]):
    write_experiment_summary(
        experiment_dir=f"results/{snakemake.wildcards.proj}/{snakemake.wildcards.exp}",
        done_files=list(snakemake.input),
        out_csv=snakemake.output.csv,
    )
