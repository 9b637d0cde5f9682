# The engine's workflow: its rule files in pipeline order and the report's front page. A
# project's Snakefile includes this file (dltemplate.workflow.ENGINE), after its configfile.
# Paths here are relative to this folder, inside the installed dltemplate package.


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
