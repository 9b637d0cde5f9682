"""Snakemake step: predict with one run's best checkpoint (see dltemplate.jobs.predict)."""

from dltemplate.jobs.gpu_slots import claim_gpus
from dltemplate.jobs.logs import job_log
from dltemplate.results.run_records import job_record

job = snakemake.params.job
with job_log(snakemake.log[0]), job_record(job["run_dir"], "predict"):
    claim_gpus(snakemake.resources.get("gpu"))  # before torch loads: CUDA_VISIBLE_DEVICES
    # torch and Lightning load here, once the record says the job runs
    from dltemplate.jobs.predict import predict_run

    predict_run(
        run_dir=job["run_dir"],
        config_file=job["config"],
        overrides=job["overrides"],
        seed=job["seed"],
        threads=snakemake.threads,
        fit_done=snakemake.input.fit_done,
        predictions_file=snakemake.output.predictions,
        done_file=snakemake.output.done,
        source=job["source"],
    )
