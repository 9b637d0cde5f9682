# An experiment's plots and tables for people and for the report (snakemake --report
# report.html); a run's own plots come with its record (rules/records.smk). Matplotlib only,
# no torch.
rule plot_comparison:
    input:
        summary=EXPERIMENT.file("summary.csv"),
    output:
        chart=report(
            EXPERIMENT.file("plots/comparison.png"),
            caption="../report/comparison.rst",
            category="{proj}/{exp}",
            subcategory="all runs",
            labels={"result": "test metrics per run"},
        ),
        table=report(
            EXPERIMENT.file("plots/summary.html"),
            caption="../report/summary.rst",
            category="{proj}/{exp}",
            subcategory="all runs",
            labels={"result": "summary table"},
        ),
    log:
        EXPERIMENT.file("logs/plot_comparison.log"),
    localrule: True  # on a cluster, plots are made on the submit host
    conda:
        PROJECT_ENV
    params:
        modes=get_declared_modes,  # the registry's metric_mode, which the metric policy honours
    script:
        "../scripts/plot_comparison.py"
