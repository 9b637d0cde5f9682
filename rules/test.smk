# Evaluate a run's best checkpoint on the test split.
rule test:
    input:
        fit_done=get_fit_done,  # or the run's `ckpt:` file, for runs without a fit
    output:
        done="results/{proj}/{exp}/{run}/test.done",
    log:
        "results/{proj}/{exp}/{run}/logs/test.log",
    conda:
        "../envs/dltemplate.yaml"
    threads: get_threads("test")
    resources:
        gpu=get_resource("test", "gpu"),
        mem_mb=get_resource("test", "mem_mb"),
        runtime=get_resource("test", "runtime"),
    params:
        job=get_job_params,
        sources=get_source_digests,  # the config's files: an edit reruns the job
    script:
        "../scripts/test.py"
