"""Snakemake step: a run's test-set confusion matrix (see dltemplate.plots)."""

from dltemplate.jobs.logs import job_log
from dltemplate.plots import write_run_confusion

with job_log(snakemake.log[0]):
    write_run_confusion(test_done=snakemake.input.test_done, out_png=snakemake.output[0])
