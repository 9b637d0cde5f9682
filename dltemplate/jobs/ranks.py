"""A fit across nodes: its ranks started by `srun`, one task per device on each node.

A run whose `resources:` ask for `nodes` (with `gpus` or `tasks_per_node` per node; see
dltemplate.registry.resources) gets a SLURM allocation of that shape, and Snakemake's slurm
plugin starts its job without `srun -n1` (the `mpi` resource), on the allocation's first node.
The fit job does what only it does (the run's lock, the plan, hparams, the archived config,
the records), then runs `srun` with one task per device on each node. Every rank builds the
run from its config and trains it with the job's DDP and Lightning's SLURMEnvironment
(dltemplate.jobs.distributed.srun_rank_settings); rank 0 hands the fit's record back to the
job through a file in the run's checkpoints folder.

`python -m dltemplate.jobs.ranks SPEC` is what each rank runs.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dltemplate.errors import UserError, one_line
from dltemplate.jobs.distributed import SRUN_RANKS_VARIABLE, srun_rank_settings
from dltemplate.records import read_json, write_json_atomic
from dltemplate.registry.resources import gpus_per_node, gres_per_node

STATUS_SIGTERM = 128 + 15  # what srun returns when the ranks stopped on SIGTERM
RANKS_ONLY = ("num_nodes", "devices", "strategy")  # trainer settings that the ranks get


@dataclass(frozen=True)
class Ranks:
    """The ranks of a fit across nodes: `per_node` tasks on each of `nodes` nodes, with
    `threads` CPUs and `gpus` GPUs (per node) each."""

    nodes: int
    per_node: int
    threads: int
    gpus: int = 0

    @classmethod
    def of_job(cls, resources: Mapping[str, Any], threads: int, run_dir: Any) -> Ranks | None:
        """The ranks that the job's Snakemake resources ask for; None for a one-process job.
        Outside a SLURM job they cannot start: one line, before the run is touched."""
        nodes = resources.get("nodes")
        if not nodes:
            return None
        per_node = resources.get("tasks_per_node") or resources.get("tasks", 1) // nodes
        if "SLURM_JOB_ID" not in os.environ:
            raise UserError(
                f"{run_dir}: its resources ask for {nodes} node(s) x {per_node} rank(s), "
                "which srun starts inside a SLURM job; submit it with --workflow-profile "
                "profiles/slurm, or drop `nodes` from its resources (and train on this "
                "machine's devices with trainer.devices)"
            )
        gpus = gpus_per_node(resources.get("gres"))
        return cls(nodes=nodes, per_node=per_node, threads=threads, gpus=gpus)

    def checked(self, settings: Mapping[str, Any]) -> dict[str, Any]:
        """The job's own trainer settings: refused in one line when they do not fit the
        allocation (as each rank would refuse them, but before the run is touched), and
        without the counts and strategy that only the ranks use."""
        allocation = {"SLURM_NNODES": str(self.nodes), "SLURM_NTASKS_PER_NODE": str(self.per_node)}
        srun_rank_settings(dict(settings), allocation)
        return {k: v for k, v in settings.items() if k not in RANKS_ONLY}

    def srun(self, spec: Path) -> list[str]:
        """The srun command that starts every rank on `spec`."""
        command = [
            "srun",
            f"--nodes={self.nodes}",
            f"--ntasks={self.nodes * self.per_node}",
            f"--ntasks-per-node={self.per_node}",
            f"--cpus-per-task={self.threads}",
            "--kill-on-bad-exit=1",  # a rank that fails stops the others
        ]
        if self.gpus:  # every rank sees all of its node's GPUs (Lightning picks by local rank)
            command.append(f"--gres={gres_per_node(self.gpus)}")
        return [*command, sys.executable, "-m", "dltemplate.jobs.ranks", str(spec)]


def fit_on_ranks(ranks: Ranks, training: Any) -> dict[str, Any]:
    """Train `training` (dltemplate.jobs.fit_training.FitTraining) on the ranks; rank 0's record."""
    from dltemplate.jobs.fit_training import FitInterrupted
    from dltemplate.layout import RunLayout, results_root

    folder = Path(
        tempfile.mkdtemp(prefix=".ranks-", dir=RunLayout.at(training.run_dir).checkpoints)
    )
    result, error = folder / "record.json", folder / "error.txt"
    fields = {k: _plain(v) for k, v in dataclasses.asdict(training).items()}
    spec = {
        "training": fields,
        "results_root": results_root(),
        "result": str(result),
        "error": str(error),
    }
    write_json_atomic(folder / "spec.json", spec)
    total = ranks.nodes * ranks.per_node
    print(
        f"DDP: {total} ranks on {ranks.nodes} node(s) started by srun in SLURM job "
        f"{os.environ.get('SLURM_JOB_ID')}",
        flush=True,
    )
    try:
        status = subprocess.run(
            ranks.srun(folder / "spec.json"), env={**os.environ, SRUN_RANKS_VARIABLE: "1"}
        ).returncode
        if status == 0 and result.is_file():
            return read_json(result)
        if error.is_file():
            raise UserError(error.read_text().strip())
        if status in (STATUS_SIGTERM, -15):
            raise FitInterrupted(
                f"Fit stopped by SIGTERM on its ranks; rerun the same target to resume from "
                f"{training.last}"
            )
        raise UserError(f"the fit's ranks ended with exit status {status} (srun; see above)")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _plain(value: Any) -> Any:
    return str(value) if isinstance(value, Path) else value


def run_rank(spec_file: str) -> None:
    """One rank: build the run, train it; rank 0 writes the record, a failing rank its error."""
    from dltemplate.jobs.fit_training import FitTraining
    from dltemplate.layout import use_results_root
    from dltemplate.project import on_path

    spec = read_json(spec_file)
    on_path(Path.cwd())
    use_results_root(spec["results_root"])
    fields = dict(spec["training"])
    fields["run_dir"] = Path(fields["run_dir"])
    if fields["resume_from"]:
        fields["resume_from"] = Path(fields["resume_from"])
    training = FitTraining(**fields)
    try:
        built, trainer, reporter = training.build()
        record = training.train(built, trainer, reporter, training.resumed_step(built))
    except Exception as exc:
        _first_error(Path(spec["error"]), exc)
        raise
    if trainer.global_rank == 0:
        write_json_atomic(spec["result"], record)


def _first_error(path: Path, exc: Exception) -> None:
    """Keep the first failing rank's error, in one line, for the job to end with."""
    message = str(exc) if isinstance(exc, UserError) else one_line(exc)
    try:
        with path.open("x") as f:
            f.write(message + "\n")
    except FileExistsError:
        pass


def main(argv: list[str] | None = None) -> None:
    from dltemplate.jobs.logs import job_log

    (spec_file,) = sys.argv[1:] if argv is None else argv
    with job_log(None):  # a user's error ends the rank in one line
        run_rank(spec_file)


if __name__ == "__main__":
    main()
