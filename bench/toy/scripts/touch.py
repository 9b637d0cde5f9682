"""The toy's every job: write its outputs (bench/dag_floor.py never runs it)."""

for path in [*snakemake.output, *snakemake.log]:  # noqa: F821
    open(path, "w").close()
