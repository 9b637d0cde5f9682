"""The fit, test and predict jobs that Snakemake's scripts call (they import torch)."""
