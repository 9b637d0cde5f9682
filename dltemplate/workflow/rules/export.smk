# Export a run's best checkpoint (torch.export, ONNX), checked against the checkpoint model.
rule export:
    input:
        fit_done=get_fit_done,  # or the run's `ckpt:` file, for runs without a fit
        tested=get_test_done,  # its metrics go into the signature, when the run has a test
    output:
        folder=directory(RUN.export),
        done=RUN.done("export"),
    log:
        RUN.log("export"),
    conda:
        PROJECT_ENV
    threads: get_threads("export")
    resources:
        **get_resources("export"),
    params:
        inputs=get_run_inputs("export"),  # an edit of the config, its imports or overrides reruns it
        job=get_job_params("export"),  # the whole job spec, not compared: docs/upgrading.md
        formats=get_export_formats,
    script:
        "../scripts/export.py"


# `export: best` on an experiment: its best run by the experiment's metric, once all are tested.
rule export_best:
    input:
        summary=EXPERIMENT.summary_csv,
        fits=get_experiment_fit_files,
    output:
        folder=directory(EXPERIMENT.best_export),
        done=EXPERIMENT.best_export_done,
    log:
        EXPERIMENT.file("logs/export_best.log"),
    localrule: True  # seconds of CPU, like the summaries: on a cluster, on the submit host
    conda:
        PROJECT_ENV
    threads: get_threads("export")
    params:
        metric=get_experiment_metric,
        inputs=get_experiment_run_inputs,  # the candidates' run inputs (compared)
        specs=get_experiment_job_specs,  # their whole job specs, not compared
        fit_dones=get_experiment_fit_dones,
    script:
        "../scripts/export_best.py"
