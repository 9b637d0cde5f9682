# Registry loading, wildcard constraints and input functions (@per_job: called for every job).
# The logic lives in the dltemplate package (dltemplate.workflow.targets), where pytest reaches it;
# nothing here imports torch.
import functools
import sys
from pathlib import Path

from snakemake.logging import logger
from snakemake.settings.types import ExecMode

from dltemplate.registry import resources
from dltemplate.registry.gpu_shares import SHARE_RESOURCE
from dltemplate.results import run_records
from dltemplate.workflow import engine_change, targets
from dltemplate.errors import UserError
from dltemplate.layout import JOB_TYPES, ExperimentLayout, ProjectLayout, RunLayout
from dltemplate.workflow.gc_passes import collect_garbage_less_often
from dltemplate.workflow.on_start import on_start
from dltemplate.workflow.per_job import per_job
from dltemplate.workflow.settings import apply_output_dir, check_workflow_config
from dltemplate.registry.model import load_registry
from dltemplate.registry.run_paths import check_run_paths
from dltemplate.warm.place import mark_cluster_jobs
from dltemplate.results.summary import declared_modes, experiment_spec, project_spec


def exit_on_user_error(function, *args):
    """`function(*args)`; a UserError ends Snakemake with its one line and exit status 1 (printed
    here: in an input function called after a checkpoint's job, Snakemake would swallow it).
    """
    try:
        return function(*args)
    except UserError as error:
        print(f"Error: {error}", file=sys.stderr, flush=True)
        sys.exit(1)


exit_on_user_error(check_workflow_config, config)
exit_on_user_error(apply_output_dir, config)
# A cluster executor's jobs run cold (dltemplate.warm); its local jobs too (see on_start).
mark_cluster_jobs(workflow.remote_exec)
REGISTRY = exit_on_user_error(load_registry, config["registry"])
# Runs made with another engine version are kept unless this asks (docs/upgrading.md); the head
# names them, the Snakemake that runs a job does not.
RERUN_ON_ENGINE_CHANGE = engine_change.rerun_asked(config)
if workflow.exec_mode == ExecMode.DEFAULT:
    ENGINE_NOTE = engine_change.note(REGISTRY.runs(), RERUN_ON_ENGINE_CHANGE)
    if ENGINE_NOTE:
        logger.info(ENGINE_NOTE)
collect_garbage_less_often()  # a large sweep's DAG builds faster (see dltemplate.workflow.gc_passes)
# The project's software environment for `--sdm conda` (its envs/ folder, beside its Snakefile).
PROJECT_ENV = str(Path(workflow.basedir) / "envs" / "dltemplate.yaml")


# Every path a rule declares comes from the one layout (dltemplate.layout), in wildcards.
RUN = RunLayout.pattern()
EXPERIMENT = ExperimentLayout.pattern()
PROJECT = ProjectLayout.pattern()


wildcard_constraints:
    **targets.WILDCARD_CONSTRAINTS,


# A DAG asks for each run once per input function of each of its jobs: look it up once.
CHECKED_RUNS = {}


def get_run(wildcards):
    return checked_run(wildcards.proj, wildcards.exp, wildcards.run)


def checked_run(*key):
    if key not in CHECKED_RUNS:
        run = exit_on_user_error(REGISTRY.run, *key)
        CHECKED_RUNS[key] = exit_on_user_error(check_run_paths, run)
    return CHECKED_RUNS[key]


def get_all_targets():
    return targets.all_targets(REGISTRY)


def get_job_spec(wildcards, job):
    return job_spec_of(wildcards.proj, wildcards.exp, wildcards.run, job)


@functools.lru_cache(maxsize=16)  # a job's two params ask for it one after the other
def job_spec_of(proj, exp, run, job):
    run = checked_run(proj, exp, run)
    return targets.job_spec(run, config["seed"], job, RERUN_ON_ENGINE_CHANGE)


def get_run_inputs(job):
    """What decides that the run's `job` is out of date: its config and the digests of the
    config's files, its overrides, seed and the engine's FINGERPRINT_VERSION. Snakemake compares
    them with what the job last ran with, and a change reruns the job."""

    @per_job
    def run_inputs(wildcards):
        return get_job_spec(wildcards, job).run_inputs()

    return run_inputs


def get_job_params(job):
    """The whole job spec, as the job's script reads it. Snakemake does not compare it with what
    the job last ran with: a params function that takes `output` is one it sees as derived from
    the outputs (as the spec's run folder is). A field of the engine's own reruns nothing.
    """

    @per_job
    def job_params(wildcards, output):
        return get_job_spec(wildcards, job).as_params()

    return job_params


@per_job
def get_fit_done(wildcards):
    return targets.fitted_input(get_run(wildcards))


@per_job
def get_test_done(wildcards):
    return targets.test_done(get_run(wildcards))


@per_job
def get_export_formats(wildcards):
    return list(get_run(wildcards).export)


def get_experiment_fit_dones(wildcards):
    return exit_on_user_error(
        targets.best_export_fits, REGISTRY, wildcards.proj, wildcards.exp
    )


def get_experiment_fit_files(wildcards):
    return list(get_experiment_fit_dones(wildcards).values())


def get_best_export_specs(wildcards):
    return exit_on_user_error(
        targets.best_export_specs,
        REGISTRY,
        wildcards.proj,
        wildcards.exp,
        config["seed"],
        RERUN_ON_ENGINE_CHANGE,
    )


def get_experiment_run_inputs(wildcards):
    """The run inputs of every candidate of `export: best` (compared, as a run's are)."""
    return {
        name: spec.run_inputs()
        for name, spec in get_best_export_specs(wildcards).items()
    }


def get_experiment_job_specs(wildcards, output):
    """Their whole job specs: derived from the outputs, so not compared (see get_job_params)."""
    return {
        name: spec.as_params()
        for name, spec in get_best_export_specs(wildcards).items()
    }


def get_experiment_metric(wildcards):
    return exit_on_user_error(
        targets.best_export_metric, REGISTRY, wildcards.proj, wildcards.exp
    )


def get_retries(job):
    return config.get("retries", {}).get(job)  # None: the profile's or --retries' value


@per_job
def get_fit_inputs(wildcards):
    run = get_run(wildcards)
    return targets.fit_inputs(REGISTRY, run) + targets.init_from_done(run)


def get_plot_targets():
    return targets.plot_targets(REGISTRY)


def get_experiment_targets(wildcards):
    wait_for_search_rounds(wildcards.proj, wildcards.exp)
    return exit_on_user_error(
        targets.experiment_targets, REGISTRY, wildcards.proj, wildcards.exp
    )


def wait_for_search_rounds(proj, exp):
    """Every round of the experiment's search asked (Snakemake runs the missing ones' jobs,
    then evaluates the caller again, now with all trials declared). The last round's
    checkpoint stands for all: it waits for the one before, told, and so on back to round 0;
    asking for every round's made a 500-round dry run take 54 s instead of 4."""
    for k in exit_on_user_error(targets.search_rounds, REGISTRY, proj, exp)[-1:]:
        checkpoints.search_round.get(proj=proj, exp=exp, k=str(k))


def get_search_params(wildcards):
    return exit_on_user_error(
        targets.search_params, REGISTRY, wildcards.proj, wildcards.exp
    )


def get_search_round_inputs(wildcards):
    """The first earlier round not told yet, through the tell checkpoint (no chain of rounds:
    targets.search_round_waits_for says why)."""
    proj, exp = wildcards.proj, wildcards.exp
    waits_for = exit_on_user_error(
        targets.search_round_waits_for, REGISTRY, proj, exp, int(wildcards.k)
    )
    if waits_for is None:
        return []
    return checkpoints.search_tell.get(proj=proj, exp=exp, k=str(waits_for)).output


def get_search_last_told(wildcards):
    return exit_on_user_error(
        targets.search_last_told, REGISTRY, wildcards.proj, wildcards.exp
    )


def search_plot(path, label):
    """An experiment's search plot, in snakemake --report with the caption of its name."""
    return report(
        path,
        caption=f"../report/{Path(path).stem}.rst",
        category="{proj}/{exp}",
        subcategory="search",
        labels={"result": label},
    )


def get_search_told_inputs(wildcards):
    asked = checkpoints.search_round.get(**wildcards).output
    return [*asked] + exit_on_user_error(
        targets.search_told_inputs,
        REGISTRY,
        wildcards.proj,
        wildcards.exp,
        int(wildcards.k),
    )


def get_summary_spec(wildcards):
    return exit_on_user_error(experiment_spec, REGISTRY, wildcards.proj, wildcards.exp)


def get_declared_modes(wildcards):
    return exit_on_user_error(declared_modes, REGISTRY, wildcards.proj, wildcards.exp)


def get_project_summary_inputs(wildcards):
    for exp in exit_on_user_error(REGISTRY.project, wildcards.proj).experiments:
        wait_for_search_rounds(wildcards.proj, exp)  # its params list every trial
    return exit_on_user_error(targets.project_summary_inputs, REGISTRY, wildcards.proj)


def get_project_spec(wildcards):
    return exit_on_user_error(project_spec, REGISTRY, wildcards.proj)


# GPUs are shared on this machine when `--resources` counts their shares (profiles/local's
# `gpu_share`); elsewhere a share job asks for a whole GPU (dltemplate.registry.gpu_shares).
LOCAL_GPU_SHARES = SHARE_RESOURCE in workflow.global_resources
# What each job type asks for when all runs ask the same: constants, not evaluated per job.
SHARED_RESOURCES = {
    job: exit_on_user_error(
        resources.shared_by_all,
        [run.resources for run in REGISTRY.runs()],
        job,
        config,
        LOCAL_GPU_SHARES,
    )
    for job in JOB_TYPES
}
# Whether some run's fit spans nodes (its resources' `nodes`), which adds the resources of its
# tasks: looked up per job only when the runs differ.
SPANS_NODES = any(
    SHARED_RESOURCES[job] is None for job in JOB_TYPES
) and exit_on_user_error(
    resources.any_spans, [run.resources for run in REGISTRY.runs()], config
)


def get_threads(job):
    if SHARED_RESOURCES[job] is not None:
        return SHARED_RESOURCES[job]["threads"]

    @per_job
    def threads(wildcards):
        return resources.job_threads(get_run(wildcards).resources, job, config)

    return threads


def get_resources(job):
    """The rule's resources (gpu, mem_mb, runtime), constants where every run agrees."""
    if SHARED_RESOURCES[job] is not None:
        return SHARED_RESOURCES[job]["resources"]
    names = resources.resource_names(config, LOCAL_GPU_SHARES, SPANS_NODES)
    return {name: get_resource(job, name) for name in names}


def get_resource(job, name):
    @per_job
    def resource(wildcards):
        run_resources = get_run(wildcards).resources
        return resources.job_resource(
            run_resources, job, name, config, LOCAL_GPU_SHARES
        )

    return resource


def run_plot(name, subcategory):
    """A run's plot `plots/<name>`, shown in snakemake --report under its experiment with the
    caption report/<name's stem>.rst."""
    return report(
        RUN.plot(name),
        caption=f"../report/{name.rsplit('.', 1)[0]}.rst",
        category="{proj}/{exp}",
        subcategory=subcategory,
        labels={"run": "{run}"},
    )


def get_record_targets():
    return run_records.record_targets(REGISTRY)


@per_job
def get_run_done_files(wildcards):
    return targets.run_targets(get_run(wildcards))


@per_job
def get_run_info(wildcards):
    return run_records.run_info(get_run(wildcards))


def get_project_run_records(wildcards):
    return run_records.project_run_records(REGISTRY, wildcards.proj)


def get_project_info(wildcards):
    project = exit_on_user_error(REGISTRY.project, wildcards.proj)
    return run_records.project_info(project)


onstart:
    # Once, in the head, before any job: a read-only run folder is one line; a forced rerun
    # of a finished fit starts it over; under SLURM, a job that can never start is named.
    exit_on_user_error(on_start, workflow, logger)
