"""Snakemake step of the example rule in rules/extra.smk: a run's test accuracy, one line."""

import json
from pathlib import Path

metrics = json.loads(Path(snakemake.input[0]).read_text())["metrics"]
Path(snakemake.output[0]).write_text(f"{metrics['test/acc']}\n")
