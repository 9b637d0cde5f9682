"""Warm job starts: jobs run in a fork of a server that has imported torch and Lightning once.

Each Snakemake job is a new Python process, and importing torch, Lightning and torchmetrics
costs it seconds, often more than a short run's training. On a local machine a job's script
hands its job to a warm server instead (`client.hand_over`): a per-user, per-project process
that imported those once and never uses them itself. The server forks a child for the job
(`child.run_job`), which takes over the script's stdin/stdout/stderr, working directory,
environment and `sys.path`, runs the step exactly as a cold job would, and exits; the script
exits with the child's status. Signals to the script reach the child; a SIGKILL of the script
(or of the server) kills the child.

- `place`: where a server lives (socket, state file, log) and whether a job may use one
- `wire`: the messages between a job's script and the server
- `fingerprint`: the code a server has loaded, to notice when it changed
- `server`: the server (`python -m dltemplate.warm.server`)
- `child`: what a forked child does
- `client`: the job script's side
"""
