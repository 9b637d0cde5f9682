"""The fit job: train a run and keep its checkpoints, hparams, archived config and metrics.

A fit that was interrupted (killed, timed out, preempted, Ctrl-C) resumes from the run's
`checkpoints/last.ckpt` when it runs again, and ends with the weights an uninterrupted fit would
have. A fit whose config, overrides or seed changed since its checkpoints were made starts
fresh and moves the old ones aside (see dltemplate.jobs.resume).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dltemplate.jobs import resume
from dltemplate.jobs.fit_training import FitTraining
from dltemplate.layout import RunLayout
from dltemplate.records import write_json_atomic, write_yaml_atomic
from dltemplate.workflow.sources import source_digests


def fit_run(
    *,
    run_dir: str | Path,
    config_file: str,
    overrides: Mapping[str, Any],
    seed: int,
    threads: int,
    done_file: str | Path,
    source: str = "the registry",
    archive_format: str = "py",
    sources: Mapping[str, str] | None = None,
    checkpoint: Mapping[str, int] | None = None,
    log_file: str | Path | None = None,
    init_from: str | Path | None = None,
    pruning: Mapping[str, Any] | None = None,
    version_marks: Mapping[str, Any] | None = None,
    may_continue: bool = False,
    ranks: Any = None,
) -> dict[str, Any]:
    """Fit the run in `run_dir`, resuming its last checkpoint when that belongs to this config;
    write `done_file` (JSON) as the last act.

    Before training it writes `hparams.yaml` (also given to the loggers) and the archived
    config in `archive_format` (py, zip or folder; see dltemplate.config.archive). `sources`: the
    digests of the config's files (dltemplate.workflow.sources.source_digests), as Snakemake saw
    them; computed here when not given. `checkpoint`: how often to write last.ckpt
    (`every_n_epochs`, `every_n_train_steps`). `log_file`: the job's log, which is kept per
    attempt as `logs/fit.attempt-<n>.log`. `init_from`: another run's fit.done, whose best
    weights a fresh (not a resumed) fit starts from. `pruning`: a search trial's link to its
    study (dltemplate.jobs.pruning); a pruned fit stops, and its record says `pruned`.
    `version_marks`: the run inputs that version results (JobSpec.version_marks); a fit made
    with other marks starts fresh. `may_continue`: a finished fit given more epochs continues
    (resume.plan_fit). `ranks`: the ranks that srun starts for a fit across nodes
    (dltemplate.jobs.ranks.Ranks); None trains in this process.
    """
    run_dir = Path(run_dir)
    started = time.time()
    with resume.run_lock(run_dir):
        current = resume.fingerprint(
            config_file, sources or source_digests(config_file), overrides, seed, version_marks
        )
        plan = resume.plan_fit(run_dir, current, may_continue)
        if plan.finished is not None:  # e.g. by a job that outlived a killed Snakemake
            print(plan.message, flush=True)
            write_json_atomic(done_file, plan.finished)
            return plan.finished
        linked = resume.keep_attempt_log(log_file, run_dir, plan.attempt)
        print(f"Fit attempt {plan.attempt}. {plan.message}", flush=True)
        try:
            record = _fit(
                run_dir=run_dir,
                config_file=config_file,
                overrides=overrides,
                seed=seed,
                threads=threads,
                source=source,
                plan=plan,
                checkpoint=checkpoint,
                archive_format=archive_format,
                init_from=init_from,
                pruning=pruning,
                ranks=ranks,
            )
        finally:
            total = resume.finish_attempt(run_dir, plan.attempt, time.time() - started)
            resume.merge_attempt_metrics(run_dir)
            if linked is None:
                resume.copy_attempt_log(log_file, run_dir, plan.attempt)
        record["attempts"] = plan.attempt
        record["fit_seconds"] = total  # over all attempts; each one's in metrics/fit/attempts.json
        if plan.continued:  # given more epochs, and continued from its last checkpoint
            record["continued"] = list(plan.continued)
        write_json_atomic(done_file, record)
        resume.mark_finished(run_dir, record)  # after fit.done: a kill in between resumes
    return record


def _fit(
    *,
    run_dir: Path,
    config_file: str,
    overrides: Mapping[str, Any],
    seed: int,
    threads: int,
    source: str,
    plan: resume.FitPlan,
    checkpoint: Mapping[str, int] | None,
    archive_format: str,
    init_from: str | Path | None = None,
    pruning: Mapping[str, Any] | None = None,
    ranks: Any = None,
) -> dict[str, Any]:
    """Build, check, write the run's hparams and archive, then train here, or on the ranks
    that srun starts (`ranks`: dltemplate.jobs.ranks.Ranks), each of which builds the run."""
    from dltemplate.config.archive import archive_config

    training = FitTraining(
        run_dir=run_dir,
        config_file=config_file,
        overrides=overrides,
        seed=seed,
        threads=threads,
        source=source,
        resume_from=plan.resume_from,
        attempt=plan.attempt,
        checkpoint=checkpoint,
        init_from=init_from,
        pruning=pruning,
    )
    # Built and checked before anything is written: a setting that Lightning refuses leaves
    # the run's folder as it was.
    built, trainer, reporter = training.build(ranks)
    resumed_step = training.resumed_step(built)
    resume.start_attempt(run_dir, plan.attempt, resumed_step)
    layout = RunLayout.at(run_dir)
    write_yaml_atomic(layout.hparams, built.hparams)
    archive_config(
        config_file,
        run_dir,
        archive_format,
        {**built.build.overrides, "seed": built.hparams["seed"]},
    )
    if ranks is not None:
        from dltemplate.jobs.ranks import fit_on_ranks

        return {**fit_on_ranks(ranks, training), "resumed_from_step": resumed_step}
    return training.train(built, trainer, reporter, resumed_step)
