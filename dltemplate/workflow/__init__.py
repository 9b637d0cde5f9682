"""The engine's workflow (engine.smk, rules/, scripts/, report/ in this folder) and what its
rules call: targets, job parameters, source digests, and the parse-time speed-ups of a large DAG.

Torch-free: this runs while Snakemake parses the workflow. Modules here may import the
registry package and the torch-free leaves of dltemplate, never torch, Lightning, matplotlib
or pandas, and never a project's code.
"""

from pathlib import Path

# What a project's Snakefile includes: `include: ENGINE`.
ENGINE = str(Path(__file__).parent / "engine.smk")
