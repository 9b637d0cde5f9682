"""Snakemake step: test one run's best checkpoint (see dltemplate.jobs.evaluate)."""

from dltemplate.jobs.gpu_slots import claim_gpus
from dltemplate.jobs.logs import job_log
from dltemplate.results.run_records import job_record

job = snakemake.params.job
with job_log(snakemake.log[0]), job_record(job["run_dir"], "test"):
    claim_gpus(snakemake.resources.get("gpu"))  # before torch loads: CUDA_VISIBLE_DEVICES
    # torch and Lightning load here, once the record says the job runs
    from dltemplate.jobs.evaluate import test_run

    test_run(
        run_dir=job["run_dir"],
        config_file=job["config"],
        overrides=job["overrides"],
        seed=job["seed"],
        threads=snakemake.threads,
        fit_done=snakemake.input.fit_done,
        done_file=snakemake.output.done,
        source=job["source"],
    )
