"""Snakemake step: fit one run (see dltemplate.jobs.fit)."""

from dltemplate.jobs.gpu_slots import claim_gpus
from dltemplate.jobs.logs import job_log
from dltemplate.results.run_records import job_record

job = snakemake.params.job
with job_log(snakemake.log[0]), job_record(job["run_dir"], "fit"):
    claim_gpus(snakemake.resources.get("gpu"))  # before torch loads: CUDA_VISIBLE_DEVICES
    # torch and Lightning load here, once the record says the job runs
    from dltemplate.jobs.fit import fit_run

    fit_run(
        run_dir=job["run_dir"],
        config_file=job["config"],
        overrides=job["overrides"],
        seed=job["seed"],
        threads=snakemake.threads,
        done_file=snakemake.output.done,
        source=job["source"],
        archive_format=snakemake.config.get("archive_format", "py"),
        sources=job["sources"],
        checkpoint=snakemake.config.get("checkpoint"),
        log_file=snakemake.log[0],
        init_from=job.get("init_from"),
    )
