# Train a run. Checkpoints go to the run's checkpoints/ folder, which is deliberately NOT an
# output: Snakemake deletes the outputs of failed jobs, and days of training would go with them.
rule fit:
    input:
        get_fit_inputs,  # another run's fit.done when the config is its archived config
    output:
        done="results/{proj}/{exp}/{run}/fit.done",
    log:
        "results/{proj}/{exp}/{run}/logs/fit.log",
    conda:
        "../envs/dltemplate.yaml"
    threads: get_threads("fit")
    params:
        job=get_job_params,
    script:
        "../scripts/fit.py"
