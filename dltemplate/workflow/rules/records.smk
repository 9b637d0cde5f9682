# Run and project records, assembled from the jobs' own records/<job>.json after they finished:
# each job writes only its own files, and these rules are the only writers of the aggregates.
# Params hold the registry's facts, so editing a description rewrites the records (cheaply).
# A run's record job also draws its plots, for people and for snakemake --report: the learning
# curves of all fit attempts and their per-epoch table, the test's confusion matrix (classifiers)
# and its predicted-against-true and residual plot (regression; each says when a run is not). They
# are not outputs of fit and test, so a sweep's own target (its summary.csv) does not carry them.
rule run_record:
    input:
        get_run_done_files,
    output:
        json=RUN.run_json,
        curves=run_plot("learning_curves.png", "learning curves"),
        epochs=run_plot("epochs.html", "metrics per epoch"),
        confusion=run_plot("confusion_matrix.png", "confusion matrices"),
        regression=run_plot("regression.png", "regression"),
    log:
        RUN.log("run_record"),
    localrule: True
    conda:
        PROJECT_ENV
    params:
        info=get_run_info,
    script:
        "../scripts/run_record.py"


rule project_record:
    input:
        get_project_run_records,
    output:
        json=PROJECT.file("project.json"),
    log:
        PROJECT.file("logs/project_record.log"),
    localrule: True
    conda:
        PROJECT_ENV
    params:
        info=get_project_info,
    script:
        "../scripts/project_record.py"
