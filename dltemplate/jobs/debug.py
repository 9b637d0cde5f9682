"""Debug runs of a run's config (`main.py debug`): Lightning's `fast_dev_run`, `overfit_batches`
and profilers, writing only into the run's `debug/<mode>/` folder.

Each mode builds the config as the run's jobs do (dltemplate.jobs.common.build_for_job) and
trains with the jobs' trainer (dltemplate.jobs.trainer.make_trainer) pointed at that folder:
no checkpoints, no hparams.yaml, no `.done` file, no record, no tracker run. Its output goes to
`debug/<mode>/<mode>.log`, and a failure ends in the one line a failed job ends with
(dltemplate.jobs.logs). What it found is returned and kept in `debug/<mode>/summary.json`.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from dltemplate.config.build import BuiltRun
from dltemplate.errors import ShapeError
from dltemplate.jobs.common import build_for_job
from dltemplate.jobs.logs import job_log
from dltemplate.layout import JOB_TYPES, RunLayout
from dltemplate.records import write_json_atomic
from dltemplate.workflow.job_spec import JobSpec

# Torch-free at import: the command line takes MODES and PROFILERS for its --help.
MODES = ("fast", "overfit", "profile")
PROFILERS = ("simple", "advanced")
# Defaults per mode: batches (fast_dev_run, overfit_batches) and epochs (overfit, profile).
BATCHES = {"fast": 1, "overfit": 2}
EPOCHS = {"overfit": 300, "profile": 1}


def debug_build(jobs: Sequence[str], spec: JobSpec, threads: int) -> dict[str, BuiltRun]:
    """The config built for each of `jobs` as those jobs build it from `spec`; a mistake raises
    the UserError a job would stop with. fit is built last, so that its random state is a
    fit's."""
    order = sorted(jobs, key=lambda job: (job == "fit", JOB_TYPES.index(job)))
    args = (spec.config, spec.overrides, spec.seed, threads, spec.source)
    return {job: build_for_job(job, *args) for job in order}


def in_debug_folder(
    layout: RunLayout, mode: str, work: Callable[[], dict[str, Any]], summary_file: str = ""
) -> dict[str, Any]:
    """Empty `debug/<mode>/`, then run `work` with its output in the mode's log, as a job runs
    (an error ends it with one line and exit status 1); keep what it returns in `summary_file`
    (default: the mode's summary.json)."""
    shutil.rmtree(layout.debug_mode(mode), ignore_errors=True)
    print(f"{mode} of {'/'.join(layout.names)}: log in {layout.debug_log(mode)}", flush=True)
    with job_log(layout.debug_log(mode)):
        summary = work()
        write_json_atomic(summary_file or layout.debug_summary(mode), summary)
    return summary


def debug_trainer(built: BuiltRun, folder: str, changes: Mapping[str, Any], callbacks=()) -> Any:
    """The job's trainer for the config's settings with `changes`, writing only under
    `folder`: a CSV log in metrics/ and nothing else (no checkpoints, no trackers)."""
    from lightning.pytorch.loggers import CSVLogger

    from dltemplate.jobs.guards import FiniteLossGuard
    from dltemplate.jobs.trainer import make_trainer

    settings = {**built.trainer_kwargs, **changes}
    guard = FiniteLossGuard(stop=settings.get("stop_on_nonfinite_loss", True))
    settings["callbacks"] = [*settings.get("callbacks", []), guard, *callbacks]
    if "logger" not in changes:
        settings["logger"] = CSVLogger(save_dir=folder, name="metrics", version="")
    return make_trainer(settings, folder, "debug")


def fit_for_debug(trainer: Any, built: BuiltRun, config_file: str) -> None:
    """`trainer.fit`, with a shape mistake named after the config as the fit job names it."""
    try:
        trainer.fit(built.task_wrapper, datamodule=built.data_wrapper)
    except ShapeError as exc:
        raise ShapeError(f"{config_file}: {exc}") from None


def fast(builds: Mapping[str, BuiltRun], layout: RunLayout, config_file: str, batches: int):
    """fast_dev_run: `batches` batches of each job the run declares, in pipeline order. The
    jobs after fit start from the weights it reached, as they would from its checkpoint."""
    folder = layout.debug_mode("fast")
    jobs = sorted(builds, key=JOB_TYPES.index)
    for job in jobs:
        built = builds[job]
        trainer = debug_trainer(built, folder, {"fast_dev_run": batches, "logger": False})
        if job == "fit":
            fit_for_debug(trainer, built, config_file)
        else:
            if "fit" in builds:
                built.task_wrapper.load_state_dict(builds["fit"].task_wrapper.state_dict())
            getattr(trainer, job)(built.task_wrapper, datamodule=built.data_wrapper)
        print(f"fast: {job} ran {batches} batch(es) (Lightning's fast_dev_run)", flush=True)
    message = f"fast: {', '.join(jobs)} ran {batches} batch(es) each without an error"
    return {"mode": "fast", "batches": batches, "jobs": jobs, "message": message}


def profile(built: BuiltRun, layout: RunLayout, config_file: str, epochs: int, kind: str):
    """A short fit (`epochs`) under Lightning's simple or advanced profiler."""
    from lightning.pytorch.profilers import AdvancedProfiler, SimpleProfiler

    folder = layout.debug_mode("profile")
    report = Path(layout.profile_report)
    profiler_class = SimpleProfiler if kind == "simple" else AdvancedProfiler
    profiler = profiler_class(dirpath=folder, filename=report.stem.split("-", 1)[1])
    trainer = debug_trainer(built, folder, {"profiler": profiler, "max_epochs": epochs})
    fit_for_debug(trainer, built, config_file)
    message = f"profile: the {kind} profiler's report of {epochs} epoch(s) is in {report}"
    return {"mode": "profile", "profiler": kind, "epochs": epochs, "message": message}


def overfit(built: BuiltRun, layout: RunLayout, config_file: str, batches: int, epochs: int):
    """overfit_batches: train on the first `batches` batches, in order, until the loss falls
    to FIT_RATIO of its first epoch's or `epochs` end; the LR schedule is off (a schedule that
    follows val/loss would lower the lr as the model memorises)."""
    from dltemplate.jobs.overfit import OverfitMonitor

    monitor = OverfitMonitor()
    changes = {"overfit_batches": batches, "max_epochs": epochs, "log_every_n_steps": 1}
    trainer = debug_trainer(built, layout.debug_mode("overfit"), changes, [monitor])
    fit_for_debug(trainer, built, config_file)
    return {"mode": "overfit", "batches": batches, "max_epochs": epochs, **monitor.verdict(batches)}


def debug_run(
    spec: JobSpec,
    threads: int,
    *,
    mode: str,
    jobs: Sequence[str] = ("fit",),
    batches: int | None = None,
    epochs: int | None = None,
    profiler: str = "simple",
) -> dict[str, Any]:
    """Run debug `mode` of the run that `spec` describes (what its jobs get, with any --set
    overrides); returns (and keeps) what it found.

    `jobs`: those that fast runs (the run's declared jobs); overfit and profile fit only.
    `batches`, `epochs`: the mode's defaults (BATCHES, EPOCHS) when None.
    """
    layout = RunLayout.at(spec.run_dir)
    batches = batches or BATCHES.get(mode, 1)
    epochs = epochs or EPOCHS.get(mode, 1)
    builds = debug_build(jobs if mode == "fast" else ("fit",), spec, threads)
    config = spec.config
    modes = {
        "fast": lambda: fast(builds, layout, config, batches),
        "overfit": lambda: overfit(builds["fit"], layout, config, batches, epochs),
        "profile": lambda: profile(builds["fit"], layout, config, epochs, profiler),
    }
    return in_debug_folder(layout, mode, modes[mode])
