"""What the rules in rules/*.smk call: targets, job parameters, source digests, and the
parse-time speed-ups of a large DAG.

Torch-free: this runs while Snakemake parses the workflow. Modules here may import the
registry package and the torch-free leaves of dltemplate, never torch, Lightning, matplotlib
or pandas, and never the example code.
"""
