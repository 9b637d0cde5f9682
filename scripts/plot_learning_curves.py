"""Snakemake step: a run's learning curves and per-epoch table (see dltemplate.plots)."""

from pathlib import Path

from dltemplate.jobs.logs import job_log
from dltemplate.plots import write_run_curves

with job_log(snakemake.log[0]):
    write_run_curves(
        run_dir=Path(snakemake.input.fit_done).parent,
        curves_png=snakemake.output.curves,
        epochs_html=snakemake.output.epochs,
    )
