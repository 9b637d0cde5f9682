#!/usr/bin/env bash
# Snakemake runs this inside the new conda environment, from the workflow's folder, right after
# creating envs/dltemplate.yaml: it installs the engine from this repository (editable, so edits
# need no rebuild). A project made by `dltemplate new` names the engine in its YAML instead.
# A relative path in the YAML's pip section would not do: Snakemake copies the YAML to
# .snakemake/conda/ before building it. The environment belongs to this folder, so keep the
# default --conda-prefix (.snakemake/conda) rather than one shared by several projects.
set -euo pipefail
python -m pip install --no-deps -e .
