# Evaluate a run's best checkpoint on the test split, and draw its confusion matrix.
rule test:
    input:
        fit_done=get_fit_done,  # or the run's `ckpt:` file, for runs without a fit
    output:
        done="results/{proj}/{exp}/{run}/test.done",
        confusion=report(
            "results/{proj}/{exp}/{run}/plots/confusion_matrix.png",
            caption="../report/confusion_matrix.rst",
            category="{proj}/{exp}",
            subcategory="confusion matrices",
            labels={"run": "{run}"},
        ),
    log:
        "results/{proj}/{exp}/{run}/logs/test.log",
    conda:
        "../envs/dltemplate.yaml"
    threads: get_threads("test")
    resources:
        **get_resources("test"),
    params:
        job=get_job_params,  # an edit of the config, its imports or overrides reruns it
    script:
        "../scripts/test.py"
