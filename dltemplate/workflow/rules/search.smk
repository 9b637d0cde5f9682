# An adaptive search (an experiment's `search:`): rounds of trials asked of Optuna, one round
# after the other told (round k waits for the first earlier round not told yet, through the
# tell checkpoint: no chain as long as the search, which Snakemake's DAG could not recurse
# through). Round k's checkpoint writes the trials it asked (search/round-<k>.json);
# they are then ordinary runs of the experiment, and the tell rule gives the study their
# results once all their jobs are done. The experiment's summary.csv needs the last round told.
#   snakemake -j2 results/<proj>/<exp>/summary.csv
checkpoint search_round:
    input:
        get_search_round_inputs,  # the first earlier round not told yet
    output:
        EXPERIMENT.search_round("{k}"),
    log:
        EXPERIMENT.file("logs/search_round-{k}.log"),
    wildcard_constraints:
        k=r"\d+",
    localrule: True  # a second of CPU: on a cluster, on the submit host
    conda:
        PROJECT_ENV
    params:
        search=get_search_params,
    script:
        "../scripts/search_round.py"


checkpoint search_tell:
    input:
        get_search_told_inputs,  # the round's trials: every job of their runs
    output:
        EXPERIMENT.search_told("{k}"),
    log:
        EXPERIMENT.file("logs/search_tell-{k}.log"),
    wildcard_constraints:
        k=r"\d+",
    localrule: True
    conda:
        PROJECT_ENV
    params:
        search=get_search_params,
    script:
        "../scripts/search_tell.py"


# The search's optimisation history and parameter importances, for people and the report.
rule search_plots:
    input:
        get_search_last_told,  # every round, told
    output:
        history=search_plot(EXPERIMENT.search_history_png, "optimisation history"),
        importances=search_plot(
            EXPERIMENT.search_importances_png, "parameter importances"
        ),
    log:
        EXPERIMENT.file("logs/search_plots.log"),
    localrule: True
    conda:
        PROJECT_ENV
    params:
        search=get_search_params,
    script:
        "../scripts/search_plots.py"
