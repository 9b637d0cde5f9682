"""Benchmarks: what the template costs over plain PyTorch, and what Snakemake costs per run.

`make bench` (`python -m bench`) runs each script in a fresh process, then rewrites
BENCHMARKS.md from the JSON results under bench/results/ (see bench/report.py).
"""
