"""The steps that Snakemake's scripts run: each script is `run_step(snakemake, <step>)`.

A job runs in a fork of the project's warm server when one serves (dltemplate.warm: torch and
Lightning are imported already), else in the script's own process, the same way in both.
Every step runs with its output in the job's log (a user error ends it with one line and exit
1, see dltemplate.jobs.logs). The jobs of a run (fit, validate, test, predict) also keep their
record, `records/<job>.json`, and claim their GPUs before torch loads; their parameters come as
one `JobSpec` (dltemplate.workflow.job_spec). torch and Lightning load inside the steps, once the
record says that the job runs.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from dltemplate.project import on_path
from dltemplate.warm.client import hand_over

# Imported in run_here, not here: a warm job's script needs only the client (each module it
# imports costs every job's start).

Step = Callable[..., Any]


def run_step(snakemake: Any, step: Step) -> None:
    """Run `step` for the Snakemake job `snakemake` (the object a `script:` receives), in a
    warm server's child (this process then exits with its status) or here. Snakemake runs it
    in the project folder, which goes first on `sys.path`, as under `python main.py`."""
    on_path(Path.cwd())
    run_here(snakemake, step, note=hand_over(snakemake, step))


def run_here(snakemake: Any, step: Step, note: str | None = None) -> None:
    """Run `step` in this process; `note` (how the job started) opens its log."""
    from dltemplate.jobs.gpu_slots import claim_gpus
    from dltemplate.jobs.logs import job_log
    from dltemplate.layout import RESULTS, use_results_root
    from dltemplate.registry.gpu_shares import SHARE_RESOURCE
    from dltemplate.results.run_records import job_record
    from dltemplate.workflow.job_spec import JobSpec

    with job_log(snakemake.log[0]):
        if note:
            print(note, flush=True)
        use_results_root(snakemake.config.get("output_dir") or RESULTS)  # checked at parse
        job = getattr(step, "job", None)
        if job is None:
            step(snakemake)
            return
        spec = JobSpec.from_params(snakemake.params.job)
        with job_record(spec.run_dir, job, run_inputs=spec.run_inputs()):
            # before torch: CUDA_VISIBLE_DEVICES (whole GPUs, or a share of one)
            claim_gpus(
                snakemake.resources.get("gpu"),
                share_units=snakemake.resources.get(SHARE_RESOURCE),
            )
            step(snakemake, spec)


def _run_job(job: str) -> Callable[[Step], Step]:
    def mark(step: Step) -> Step:
        step.job = job
        return step

    return mark


def _common(snakemake: Any, spec: Any) -> dict[str, Any]:
    return {
        "run_dir": spec.run_dir,
        "config_file": spec.config,
        "overrides": spec.overrides,
        "seed": spec.seed,
        "threads": snakemake.threads,
        "source": spec.source,
    }


@_run_job("fit")
def fit(snakemake: Any, spec: Any) -> None:
    from dltemplate.jobs import resume
    from dltemplate.jobs.fit import fit_run
    from dltemplate.jobs.ranks import Ranks

    ranks = Ranks.of_job(snakemake.resources, snakemake.threads, spec.run_dir)
    try:
        fit_run(
            **_common(snakemake, spec),
            done_file=snakemake.output.done,
            archive_format=snakemake.config.get("archive_format", "py"),
            sources=spec.sources,
            checkpoint=snakemake.config.get("checkpoint"),
            log_file=snakemake.log[0],
            init_from=spec.init_from,
            pruning=spec.pruning,
            version_marks=spec.version_marks(),
            may_continue=snakemake.config.get(resume.CONTINUE_SETTING) in (True, "true"),
            ranks=ranks,
        )
    except resume.RunLockedError as exc:  # keep the log of the fit that holds the lock
        refused = resume.set_aside_refused_log(snakemake.log[0], spec.run_dir)
        if refused is None:
            raise
        raise resume.RunLockedError(
            f"{exc} (this refusal is logged in {refused}; {snakemake.log[0]} is the log of "
            "the latest attempt)"
        ) from None


@_run_job("validate")
def validate(snakemake: Any, spec: Any) -> None:
    from dltemplate.jobs.evaluate import validate_run

    validate_run(
        **_common(snakemake, spec),
        fit_done=snakemake.input.fit_done,
        done_file=snakemake.output.done,
    )


@_run_job("test")
def test(snakemake: Any, spec: Any) -> None:
    from dltemplate.jobs.evaluate import test_run

    test_run(
        **_common(snakemake, spec),
        fit_done=snakemake.input.fit_done,
        done_file=snakemake.output.done,
    )


test.__test__ = False  # not a pytest test, despite its name


@_run_job("predict")
def predict(snakemake: Any, spec: Any) -> None:
    from dltemplate.jobs.predict import predict_run

    predict_run(
        **_common(snakemake, spec),
        fit_done=snakemake.input.fit_done,
        predictions_file=snakemake.output.predictions,
        done_file=snakemake.output.done,
    )


@_run_job("export")
def export(snakemake: Any, spec: Any) -> None:
    from dltemplate.jobs.export import export_run

    export_run(
        **_common(snakemake, spec),
        fit_done=snakemake.input.fit_done,
        out_dir=snakemake.output.folder,
        done_file=snakemake.output.done,
        formats=snakemake.params.formats,
    )


def export_best(snakemake: Any) -> None:
    from dltemplate.jobs.export import export_best as export

    export(
        summary_csv=snakemake.input.summary,
        metric=snakemake.params.metric["metric"],
        mode=snakemake.params.metric["mode"],
        specs=snakemake.params.specs,
        fit_dones=snakemake.params.fit_dones,
        threads=snakemake.threads,
        out_dir=snakemake.output.folder,
        done_file=snakemake.output.done,
    )


def run_record(snakemake: Any) -> None:
    """A run's run.json, from its jobs' records, and its plots."""
    from dltemplate.layout import RunLayout
    from dltemplate.results.plots import write_run_plots
    from dltemplate.results.run_records import write_run_record

    info = snakemake.params.info
    run_dir = RunLayout.of(info["project"], info["experiment"], info["name"]).folder
    write_run_record(info=info, run_dir=run_dir, out=snakemake.output.json)
    write_run_plots(
        run_dir=run_dir,
        jobs=info["jobs"],
        curves_png=snakemake.output.curves,
        epochs_html=snakemake.output.epochs,
        confusion_png=snakemake.output.confusion,
        regression_png=snakemake.output.regression,
    )


def project_record(snakemake: Any) -> None:
    from dltemplate.results.run_records import write_project_record

    write_project_record(
        info=snakemake.params.info, run_records=list(snakemake.input), out=snakemake.output.json
    )


def summarize(snakemake: Any) -> None:
    from dltemplate.results.summary import write_experiment_summary

    write_experiment_summary(
        experiment=snakemake.params.experiment,
        out_csv=snakemake.output.csv,
        out_points=snakemake.output.points,
        out_md=snakemake.output.md,
        out_png=snakemake.output.png,
    )


def summarize_project(snakemake: Any) -> None:
    from dltemplate.results.summary import write_project_summary

    write_project_summary(
        project=snakemake.params.project,
        out_csv=snakemake.output.csv,
        out_md=snakemake.output.md,
    )


def plot_comparison(snakemake: Any) -> None:
    from dltemplate.results.plots import write_experiment_comparison

    write_experiment_comparison(
        summary_csv=snakemake.input.summary,
        comparison_png=snakemake.output.chart,
        summary_html=snakemake.output.table,
        modes=snakemake.params.modes,
    )
