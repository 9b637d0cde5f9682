# Run and project records, assembled from the jobs' own records/<job>.json after they finished:
# each job writes only its own files, and these rules are the only writers of the aggregates.
# Params hold the registry's facts, so editing a description rewrites the records (cheaply).
rule run_record:
    input:
        get_run_done_files,
    output:
        json="results/{proj}/{exp}/{run}/run.json",
    log:
        "results/{proj}/{exp}/{run}/logs/run_record.log",
    localrule: True
    conda:
        "../envs/dltemplate.yaml"
    params:
        info=get_run_info,
    script:
        "../scripts/run_record.py"


rule project_record:
    input:
        get_project_run_records,
    output:
        json="results/{proj}/project.json",
    log:
        "results/{proj}/logs/project_record.log",
    localrule: True
    conda:
        "../envs/dltemplate.yaml"
    params:
        info=get_project_info,
    script:
        "../scripts/project_record.py"
