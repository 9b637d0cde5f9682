# Plots and tables for people and for the report (snakemake --report report.html). They read
# the jobs' records and metrics CSVs; matplotlib only, no torch.
rule plot_learning_curves:
    input:
        fit_done=get_fit_done,
    output:
        curves=report(
            "results/{proj}/{exp}/{run}/plots/learning_curves.png",
            caption="../report/learning_curves.rst",
            category="{proj}/{exp}",
            subcategory="learning curves",
            labels={"run": "{run}"},
        ),
        epochs=report(
            "results/{proj}/{exp}/{run}/plots/epochs.html",
            caption="../report/epochs.rst",
            category="{proj}/{exp}",
            subcategory="metrics per epoch",
            labels={"run": "{run}"},
        ),
    log:
        "results/{proj}/{exp}/{run}/logs/plot_learning_curves.log",
    localrule: True  # on a cluster, plots are made on the submit host
    conda:
        "../envs/dltemplate.yaml"
    script:
        "../scripts/plot_learning_curves.py"


rule plot_confusion_matrix:
    input:
        test_done=get_test_done,
    output:
        report(
            "results/{proj}/{exp}/{run}/plots/confusion_matrix.png",
            caption="../report/confusion_matrix.rst",
            category="{proj}/{exp}",
            subcategory="confusion matrices",
            labels={"run": "{run}"},
        ),
    log:
        "results/{proj}/{exp}/{run}/logs/plot_confusion_matrix.log",
    localrule: True  # on a cluster, plots are made on the submit host
    conda:
        "../envs/dltemplate.yaml"
    script:
        "../scripts/plot_confusion_matrix.py"


rule plot_comparison:
    input:
        summary="results/{proj}/{exp}/summary.csv",
    output:
        chart=report(
            "results/{proj}/{exp}/plots/comparison.png",
            caption="../report/comparison.rst",
            category="{proj}/{exp}",
            subcategory="all runs",
            labels={"result": "test metrics per run"},
        ),
        table=report(
            "results/{proj}/{exp}/plots/summary.html",
            caption="../report/summary.rst",
            category="{proj}/{exp}",
            subcategory="all runs",
            labels={"result": "summary table"},
        ),
    log:
        "results/{proj}/{exp}/logs/plot_comparison.log",
    localrule: True  # on a cluster, plots are made on the submit host
    conda:
        "../envs/dltemplate.yaml"
    script:
        "../scripts/plot_comparison.py"
