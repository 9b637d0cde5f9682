"""Snakemake step: assemble a run's run.json from its jobs' records (see dltemplate.run_records)."""

from dltemplate.jobs.logs import job_log
from dltemplate.run_records import write_run_record

with job_log(snakemake.log[0]):
    write_run_record(
        info=snakemake.params.info,
        run_dir=f"results/{snakemake.wildcards.proj}/{snakemake.wildcards.exp}/"
        f"{snakemake.wildcards.run}",
        out=snakemake.output.json,
    )
