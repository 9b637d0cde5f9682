# An experiment's summary: one row per run, mean and std over seeds per sweep point, the best
# point by the experiment's metric, and a plot. Reads only the runs' own records, so no job ever
# rewrites a file that another job writes. The target of a whole sweep:
#   snakemake -j4 results/<proj>/<exp>/summary.csv
rule summary:
    input:
        get_experiment_targets,
    output:
        csv=EXPERIMENT.file("summary.csv"),
        points=EXPERIMENT.file("summary_points.csv"),
        md=EXPERIMENT.file("summary.md"),
        png=EXPERIMENT.file("summary.png"),
    log:
        EXPERIMENT.file("logs/summary.log"),
    localrule: True  # on a cluster, aggregation runs on the submit host
    conda:
        PROJECT_ENV
    params:
        experiment=get_summary_spec,
    script:
        "../scripts/summarize.py"


# A project's summary: one row per experiment with its best point.
rule project_summary:
    input:
        get_project_summary_inputs,
    output:
        csv=PROJECT.file("summary.csv"),
        md=PROJECT.file("summary.md"),
    log:
        PROJECT.file("logs/summary.log"),
    localrule: True  # on a cluster, aggregation runs on the submit host
    conda:
        PROJECT_ENV
    params:
        project=get_project_spec,
    script:
        "../scripts/summarize_project.py"
