# Train a run. Checkpoints go to the run's checkpoints/ folder, which is deliberately NOT an
# output: Snakemake deletes the outputs of failed jobs, and days of training would go with them.
# Run again after an interruption, the job resumes from checkpoints/last.ckpt.
rule fit:
    input:
        get_fit_inputs,  # the fit of the run whose archived config or weights (init_from) it uses
    output:
        done=RUN.done("fit"),
    log:
        RUN.log("fit"),
    retries: get_retries("fit")  # each retry resumes from the last checkpoint
    conda:
        PROJECT_ENV
    threads: get_threads("fit")
    resources:
        **get_resources("fit"),
    params:
        inputs=get_run_inputs("fit"),  # an edit of the config, its imports or overrides reruns it
        job=get_job_params("fit"),  # the whole job spec, not compared: docs/upgrading.md
    script:
        "../scripts/fit.py"
