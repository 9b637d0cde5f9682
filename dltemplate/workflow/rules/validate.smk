# Run the validation loop (Lightning's trainer.validate) on a run's best checkpoint.
rule validate:
    input:
        fit_done=get_fit_done,  # or the run's `ckpt:` file, for runs without a fit
    output:
        done=RUN.done("validate"),
    log:
        RUN.log("validate"),
    conda:
        PROJECT_ENV
    threads: get_threads("validate")
    resources:
        **get_resources("validate"),
    params:
        inputs=get_run_inputs("validate"),  # an edit of the config, its imports or overrides reruns it
        job=get_job_params("validate"),  # the whole job spec, not compared: docs/upgrading.md
    script:
        "../scripts/validate.py"
