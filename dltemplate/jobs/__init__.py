"""Inside a job's process: fit, test and predict, the Trainer they build, checkpoints, exact
resume, loggers and GPU slots.

Modules here may import torch and Lightning (a job pays that cost once), and the config
package that builds a run. Nothing that Snakemake imports at parse time may import from here.
"""
