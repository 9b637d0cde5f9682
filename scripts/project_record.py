"""Snakemake step: assemble project.json from its runs' run.json (results.run_records)."""

from dltemplate.jobs.logs import job_log
from dltemplate.results.run_records import write_project_record

with job_log(snakemake.log[0]):
    write_project_record(
        info=snakemake.params.info,
        run_records=list(snakemake.input),
        out=snakemake.output.json,
    )
