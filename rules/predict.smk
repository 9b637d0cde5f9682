# Predict the predict split (the test split unless the config says otherwise) into a CSV.
rule predict:
    input:
        fit_done=get_fit_done,  # or the run's `ckpt:` file, for runs without a fit
    output:
        predictions="results/{proj}/{exp}/{run}/predictions.csv",
        done="results/{proj}/{exp}/{run}/predict.done",
    log:
        "results/{proj}/{exp}/{run}/logs/predict.log",
    conda:
        "../envs/dltemplate.yaml"
    threads: get_threads("predict")
    resources:
        gpu=get_resource("predict", "gpu"),
        mem_mb=get_resource("predict", "mem_mb"),
        runtime=get_resource("predict", "runtime"),
    params:
        job=get_job_params,
        sources=get_source_digests,  # the config's files: an edit reruns the job
    script:
        "../scripts/predict.py"
