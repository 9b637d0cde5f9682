"""What a run leaves behind, read back: run and project records, live status, experiment
summaries, and plots.

Torch-free: record jobs and the command line use it. matplotlib is imported inside the
functions that draw (the record and plot jobs), never at module import; pandas never.
"""
