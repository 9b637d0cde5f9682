# Evaluate a run's best checkpoint on the test split.
rule test:
    input:
        fit_done=get_fit_done,  # or the run's `ckpt:` file, for runs without a fit
    output:
        done=RUN.done("test"),
    log:
        RUN.log("test"),
    conda:
        PROJECT_ENV
    threads: get_threads("test")
    resources:
        **get_resources("test"),
    params:
        inputs=get_run_inputs("test"),  # an edit of the config, its imports or overrides reruns it
        job=get_job_params("test"),  # the whole job spec, not compared: docs/upgrading.md
    script:
        "../scripts/test.py"
