# This project's workflow: its settings, the engine's rules (installed with the dltemplate
# package), your own rules under rules/, and `all`. Targets are files under
# results/<proj>/<exp>/<run>/, e.g.
#   snakemake -j2 results/digits/baseline/cnn/test.done
# Then the HTML report of what was built: snakemake --report report.html

from snakemake.utils import min_version

from dltemplate.workflow import ENGINE

min_version("9.0")


configfile: "configs/workflow.yaml"


include: ENGINE
include: "rules/extra.smk"


rule all:
    default_target: True
    input:
        get_all_targets(),
        get_record_targets(),
        get_plot_targets(),
