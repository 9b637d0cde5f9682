# Predict the predict split (the test split unless the config says otherwise) into a CSV.
rule predict:
    input:
        fit_done=get_fit_done,  # or the run's `ckpt:` file, for runs without a fit
    output:
        predictions=RUN.predictions,
        done=RUN.done("predict"),
    log:
        RUN.log("predict"),
    conda:
        PROJECT_ENV
    threads: get_threads("predict")
    resources:
        **get_resources("predict"),
    params:
        inputs=get_run_inputs("predict"),  # an edit of the config, its imports or overrides reruns it
        job=get_job_params("predict"),  # the whole job spec, not compared: docs/upgrading.md
    script:
        "../scripts/predict.py"
