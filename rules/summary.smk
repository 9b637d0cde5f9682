# One row per run of an experiment: its test metrics and fit facts. Reads only the runs' own
# records, so no job ever rewrites a file that another job writes.
rule summary:
    input:
        get_experiment_targets,
    output:
        csv="results/{proj}/{exp}/summary.csv",
    log:
        "results/{proj}/{exp}/logs/summary.log",
    localrule: True  # on a cluster, aggregation runs on the submit host
    conda:
        "../envs/dltemplate.yaml"
    script:
        "../scripts/summarize.py"
