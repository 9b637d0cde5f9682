"""Snakemake step: assemble a run's run.json from its jobs' records (results.run_records)
and draw its plots (see dltemplate.results.plots.write_run_plots)."""

from dltemplate.jobs.logs import job_log
from dltemplate.layout import RunLayout
from dltemplate.results.plots import write_run_plots
from dltemplate.results.run_records import write_run_record

info = snakemake.params.info
run_dir = RunLayout.of(info["project"], info["experiment"], info["name"]).folder
with job_log(snakemake.log[0]):
    write_run_record(info=info, run_dir=run_dir, out=snakemake.output.json)
    write_run_plots(
        run_dir=run_dir,
        jobs=info["jobs"],
        curves_png=snakemake.output.curves,
        epochs_html=snakemake.output.epochs,
        confusion_png=snakemake.output.confusion,
    )
