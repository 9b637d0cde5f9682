# Evaluate a run's best checkpoint on the test split.
rule test:
    input:
        fit_done=get_fit_done,
    output:
        done="results/{proj}/{exp}/{run}/test.done",
    log:
        "results/{proj}/{exp}/{run}/logs/test.log",
    conda:
        "../envs/dltemplate.yaml"
    threads: get_threads("test")
    params:
        job=get_job_params,
    script:
        "../scripts/test.py"
