# The workflow's table of contents: settings, the rule files in pipeline order, and `all`.
# Targets are files under results/<proj>/<exp>/<run>/, e.g.
#   snakemake -j2 results/digits/baseline/cnn/test.done
# Then the HTML report of what was built: snakemake --report report.html


from snakemake.utils import min_version

min_version("9.0")


configfile: "configs/workflow.yaml"


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/fit.smk"
include: "rules/validate.smk"
include: "rules/test.smk"
include: "rules/predict.smk"
include: "rules/export.smk"
include: "rules/search.smk"
include: "rules/summary.smk"
include: "rules/records.smk"
include: "rules/plots.smk"


rule all:
    default_target: True
    input:
        get_all_targets(),
        get_record_targets(),
        get_plot_targets(),
