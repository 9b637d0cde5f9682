# Your own rules. The Snakefile includes this file after the engine's rules, so the engine's
# names are at hand here: RUN, EXPERIMENT and PROJECT (the layout of results/, in wildcards),
# PROJECT_ENV, and the input functions of dltemplate/workflow/rules/common.smk. Scripts go
# under scripts/; rule files of your own, included from the Snakefile, under rules/.
#
# An example: each run's test accuracy in a text file of its own, made from its test.done,
#   snakemake -j1 results/digits/baseline/mlp/test_accuracy.txt
# Uncomment it to try.
#
# rule test_accuracy:
#     input:
#         RUN.done("test"),
#     output:
#         f"{RUN.folder}/test_accuracy.txt",
#     script:
#         "../scripts/test_accuracy.py"
