"""Where everything of a run, an experiment and a project lies: the one home of those paths.

    results/<proj>/                       ProjectLayout: summary.csv/.md, project.json, logs/
      <exp>/                              ExperimentLayout: summary.*, plots/comparison.png
        search/                           an adaptive search's study (dltemplate.registry.search):
          study.journal spec.json           Optuna's journal, the search's fixed settings
          round-<k>.json told-<k>.json      the trials asked in round k; their results, told
        <run>/                            RunLayout
          fit.done validate.done test.done predict.done   each job's record of success
          run.json                          the run's record, assembled from records/
          hparams.yaml                      every value that shaped the run
          archived_config.py|.zip|/         the config the fit ran with (dltemplate.config.archive)
          checkpoints/                      last.ckpt, best.ckpt, last.json, fit_state.json
          checkpoints.old-<n>/              an earlier fit, moved aside when the fit started over
          fit.lock  RESTART                 the fit's lock; a request to start over
          logs/<job>.log                    each job's log (fit.attempt-<n>.log per attempt,
                                            fit.refused-<n>.log per fit refused by fit.lock)
          metrics/<job>/                    CSV logs (fit: attempt-<n>/ and merged metrics.csv)
          records/<job>.json                each job's own record: when, where, how it ended
          env/packages.txt  env/diff.patch  the jobs' installed packages and uncommitted changes
          env/reproduces/                   the archived config a reproduction was made from
          plots/                            learning curves, per-epoch table, test plots
          test_confusion.csv                a classifier's test confusion counts (test job)
          test_multilabel.csv               a multi-label classifier's test counts per label
          test_regression.csv               a regression's test predictions and targets (test job)
          predictions.csv                   the predict job's output
          debug/<mode>/                     `main.py debug` and `lr-find` (never read by jobs):
          debug/lr_find.png lr_find.json      the log, summary.json, metrics/, profiler report

`results/` is the default results root: `output_dir` in configs/workflow.yaml (or
`--config output_dir=/scratch/me/results`) moves every path below it; the workflow, each job and
the command line set it once with `use_results_root` (dltemplate.workflow.settings).

Torch-free and import-free: the rules (at parse time), the jobs and the command line all take
their paths from here. The layouts hold strings, so that a layout made of wildcards
(`RunLayout.pattern()`) gives the rules' output patterns.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

RESULTS = "results"  # the default results root (`output_dir`)
_ROOT = {"path": RESULTS}


def results_root() -> str:
    """Where results go in this process: `output_dir`, relative or absolute."""
    return _ROOT["path"]


def use_results_root(path: str | Path) -> None:
    """Put every results path of this process under `path` (checked by the caller)."""
    text = Path(path).as_posix().rstrip("/")
    _ROOT["path"] = text or RESULTS


REGISTRY = "configs/projects"  # the default registry folder (configs/workflow.yaml: registry)
# Every job type, in pipeline order; a run declares a subset (validate only when it asks).
JOB_TYPES = ("fit", "validate", "test", "predict", "export")
DEFAULT_JOBS = ("fit", "test", "predict")  # a run's jobs when its `jobs:` names none
# What the export job can write, by the name a run's `export:` gives it (default: all).
EXPORT_FILES = {"pt2": "model.pt2", "onnx": "model.onnx"}
ARCHIVE_NAMES = {
    "py": "archived_config.py",
    "zip": "archived_config.zip",
    "folder": "archived_config",
}
# Names the layout uses inside an experiment's and a project's folder: no run or experiment
# may take them.
EXPERIMENT_FILES = (
    "summary.csv",
    "summary_points.csv",
    "summary.md",
    "summary.png",
    "plots",
    "logs",
    "best_export",
    "best_export.done",
)  # and `search/` (a search's study): its experiment's runs are trials, whose names hold a number
PROJECT_FILES = ("summary.csv", "summary.md", "project.json", "logs")
# No project, experiment or run may be named like a file the layout writes beside one.
RESERVED_NAMES = tuple(dict.fromkeys((*EXPERIMENT_FILES, *PROJECT_FILES, "run.json", "mlflow.db")))


# A checkpoint kept every n epochs: checkpoints/epoch=004.ckpt (Lightning's filename template;
# epochs count from 0, as Lightning counts them).
EPOCH_CHECKPOINT = "epoch={epoch:03d}"


@dataclass(frozen=True)
class RunLayout:
    """The paths of one run folder, as strings (`folder` is relative to the working folder)."""

    folder: str

    @classmethod
    def of(cls, proj: str, exp: str, run: str, root: str | None = None) -> RunLayout:
        return cls(f"{root or results_root()}/{proj}/{exp}/{run}")

    @classmethod
    def pattern(cls) -> RunLayout:
        """The layout in Snakemake wildcards: `results/{proj}/{exp}/{run}/...`."""
        return cls.of("{proj}", "{exp}", "{run}")

    @classmethod
    def at(cls, folder: str | Path) -> RunLayout:
        return cls(Path(folder).as_posix())

    @property
    def names(self) -> tuple[str, str, str]:
        """(proj, exp, run), the last three parts of the folder."""
        proj, exp, run = Path(self.folder).parts[-3:]
        return proj, exp, run

    def _in(self, *parts: str) -> str:
        return "/".join((self.folder, *parts))

    @property
    def path(self) -> Path:
        return Path(self.folder)

    # -- what the jobs leave --------------------------------------------------------------
    def done(self, job: str) -> str:
        return self._in(f"{job}.done")

    @property
    def run_json(self) -> str:
        return self._in("run.json")

    @property
    def hparams(self) -> str:
        return self._in("hparams.yaml")

    def archive(self, archive_format: str) -> str:
        return self._in(ARCHIVE_NAMES[archive_format])

    @property
    def archives(self) -> tuple[str, ...]:
        return tuple(self._in(name) for name in ARCHIVE_NAMES.values())

    @property
    def predictions(self) -> str:
        return self._in("predictions.csv")

    # -- the export job's files ------------------------------------------------------------
    @property
    def export(self) -> str:
        return self._in("export")

    def exported(self, export_format: str) -> str:
        """The exported model in `export_format` (pt2, onnx): export/model.pt2 ..."""
        return self._in("export", EXPORT_FILES[export_format])

    @property
    def export_signature(self) -> str:
        """Input and output names, shapes and dtypes, preprocessing, the run's metrics (JSON)."""
        return self._in("export", "signature.json")

    @property
    def export_readme(self) -> str:
        return self._in("export", "README.md")

    # -- checkpoints and the fit's own files -----------------------------------------------
    @property
    def checkpoints(self) -> str:
        return self._in("checkpoints")

    @property
    def last_checkpoint(self) -> str:
        return self._in("checkpoints", "last.ckpt")

    @property
    def best_checkpoint(self) -> str:
        return self._in("checkpoints", "best.ckpt")

    @property
    def last_checkpoint_state(self) -> str:
        return self._in("checkpoints", "last.json")

    @property
    def fit_state(self) -> str:
        return self._in("checkpoints", "fit_state.json")

    def epoch_checkpoints(self) -> list[Path]:
        """The checkpoints kept every n epochs (trainer.keep_every_n_epochs), oldest first."""
        return sorted(Path(self.checkpoints).glob(f"{EPOCH_CHECKPOINT.partition('=')[0]}=*.ckpt"))

    def old_checkpoints(self, n: int | str) -> str:
        return self._in(f"checkpoints.old-{n}")

    @property
    def lock(self) -> str:
        return self._in("fit.lock")

    @property
    def restart_flag(self) -> str:
        return self._in("RESTART")

    # -- logs, metrics, records, plots -----------------------------------------------------
    @property
    def logs(self) -> str:
        return self._in("logs")

    def log(self, job: str) -> str:
        return self._in("logs", f"{job}.log")

    def attempt_log(self, attempt: int | str) -> str:
        return self._in("logs", f"fit.attempt-{attempt}.log")

    def refused_log(self, number: int | str) -> str:
        return self._in("logs", f"fit.refused-{number}.log")

    def metrics(self, job: str) -> str:
        return self._in("metrics", job)

    def attempt_metrics(self, attempt: int | str) -> str:
        return self._in("metrics", "fit", f"attempt-{attempt}")

    @property
    def attempts(self) -> str:
        return self._in("metrics", "fit", "attempts.json")

    @property
    def fit_metrics_csv(self) -> str:
        return self._in("metrics", "fit", "metrics.csv")

    def tracker(self, name: str, job: str) -> str:
        """A file-based tracker's folder for one job (tensorboard/<job>, ...)."""
        return self._in(name, job)

    def tracker_record(self, job: str) -> str:
        """Where a job's trackers say what they logged to (run ids, addresses)."""
        return self._in("trackers", f"{job}.json")

    @property
    def test_confusion(self) -> str:
        """The test job's confusion counts, for the record job's plot."""
        return self._in("test_confusion.csv")

    @property
    def test_multilabel(self) -> str:
        """A multi-label classifier's test counts per label, for the record job's plot."""
        return self._in("test_multilabel.csv")

    @property
    def test_regression(self) -> str:
        """The test job's predicted and true values of a regression, for the record job's plot."""
        return self._in("test_regression.csv")

    @property
    def records(self) -> str:
        return self._in("records")

    def record(self, job: str) -> str:
        return self._in("records", f"{job}.json")

    # -- the environment the jobs ran in (dltemplate.results.environment) -------------------
    @property
    def env(self) -> str:
        return self._in("env")

    def packages(self, job: str | None = None) -> str:
        """The installed distributions the run's jobs share; `job`: that job's own list, kept
        when it differs from the shared one."""
        return self._in("env", f"packages-{job}.txt" if job else "packages.txt")

    def reproduced_archive(self, archive_format: str) -> str:
        """`main.py reproduce`'s copy of the archived config of the run this one reproduces
        (the new run's config; its own fit archives it again as `archive(...)`)."""
        return self._in("env", "reproduces", ARCHIVE_NAMES[archive_format])

    def diff_patch(self, job: str | None = None) -> str:
        """`git diff HEAD` of a dirty tree, shared by the run's jobs, or one job's own."""
        return self._in("env", f"diff-{job}.patch" if job else "diff.patch")

    @property
    def plots(self) -> str:
        return self._in("plots")

    def plot(self, name: str) -> str:
        return self._in("plots", name)

    # -- debug runs (main.py debug, main.py lr-find): beside the jobs' files, never theirs ----
    @property
    def debug(self) -> str:
        return self._in("debug")

    def debug_mode(self, mode: str) -> str:
        """One mode's folder (fast, overfit, profile, lr_find), emptied when the mode runs."""
        return self._in("debug", mode)

    def debug_log(self, mode: str) -> str:
        return self._in("debug", mode, f"{mode}.log")

    def debug_summary(self, mode: str) -> str:
        """What the mode found (JSON): the batches it ran, the overfit's losses and verdict."""
        return self._in("debug", mode, "summary.json")

    def debug_metrics(self, mode: str) -> str:
        """The mode's CSV log folder (metrics.csv), Lightning's CSVLogger writes it."""
        return self._in("debug", mode, "metrics")

    @property
    def profile_report(self) -> str:
        """The profiler's report of `main.py debug --mode profile` (Lightning names it
        `<stage>-<filename>.txt`: the fit stage, filename `profile`)."""
        return self._in("debug", "profile", "fit-profile.txt")

    @property
    def lr_find_plot(self) -> str:
        return self._in("debug", "lr_find.png")

    @property
    def lr_find_json(self) -> str:
        """The learning rates tried, their losses, the suggestion and the --set that applies it."""
        return self._in("debug", "lr_find.json")


@dataclass(frozen=True)
class _Folder:
    """A folder of results that holds other folders (an experiment's runs, a project's
    experiments) and files of its own."""

    folder: str

    def file(self, name: str) -> str:
        """A file of this folder: one of EXPERIMENT_FILES or PROJECT_FILES, or one under its
        plots/ or logs/ (`plots/comparison.png`)."""
        return f"{self.folder}/{name}"

    @property
    def summary_csv(self) -> str:
        return self.file("summary.csv")


class ExperimentLayout(_Folder):
    @classmethod
    def of(cls, proj: str, exp: str, root: str | None = None) -> ExperimentLayout:
        return cls(f"{root or results_root()}/{proj}/{exp}")

    @classmethod
    def pattern(cls) -> ExperimentLayout:
        return cls.of("{proj}", "{exp}")

    def run(self, name: str) -> RunLayout:
        return RunLayout(self.file(name))

    @property
    def comparison_png(self) -> str:
        return self.file("plots/comparison.png")

    @property
    def best_export(self) -> str:
        """`export: best`: the experiment's best run, exported (as a run's export/ folder)."""
        return self.file("best_export")

    @property
    def best_export_done(self) -> str:
        return self.file("best_export.done")

    @property
    def search(self) -> str:
        """An adaptive search's folder: its study, fixed settings and rounds."""
        return self.file("search")

    @property
    def study_journal(self) -> str:
        """Optuna's journal file storage (appended under its file lock; survives kills)."""
        return self.file("search/study.journal")

    @property
    def search_spec(self) -> str:
        """The settings the study was started with; a change to them is refused."""
        return self.file("search/spec.json")

    def search_round(self, k: int | str) -> str:
        """The trials asked in round `k` (numbers, params, run names): the round's checkpoint."""
        return self.file(f"search/round-{k}.json")

    def search_told(self, k: int | str) -> str:
        """The results of round `k`'s trials, as they were told to the study."""
        return self.file(f"search/told-{k}.json")

    @property
    def search_history_png(self) -> str:
        """A search's objective trial by trial (with `param_importances.png` beside it)."""
        return self.file("plots/optimization_history.png")

    @property
    def search_importances_png(self) -> str:
        """How much each searched parameter explains the objective (fANOVA)."""
        return self.file("plots/param_importances.png")


class ProjectLayout(_Folder):
    @classmethod
    def of(cls, proj: str, root: str | None = None) -> ProjectLayout:
        return cls(f"{root or results_root()}/{proj}")

    @classmethod
    def pattern(cls) -> ProjectLayout:
        return cls.of("{proj}")

    def experiment(self, name: str) -> ExperimentLayout:
        return ExperimentLayout(self.file(name))

    @property
    def project_json(self) -> str:
        return self.file("project.json")
