"""Deliberate breaks of the template's claims, and whether the tests named for each catch it.

`python -m bench.mutations` (once per release, not in CI: minutes per break) copies the working
tree into a temporary folder for each break, makes the one edit there, runs the tests named for
it, and prints a table: which named tests failed (caught it), or that none did. The working tree
itself is never edited. A break whose anchor (the line it edits) is no longer in its file is
reported as "anchor not found": update the anchor to the new code, the claim still needs a test.

`python -m bench.mutations parity atomic` runs only those breaks; `--list` shows them.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutation:
    name: str
    claim: str
    file: str
    anchor: str  # exact text in `file`, replaced once by `broken`
    broken: str
    tests: tuple[str, ...]  # pytest node ids that must fail when the claim is broken


MUTATIONS = (
    Mutation(
        "resume",
        "an interrupted fit resumes from its checkpoint (it restarts instead)",
        "dltemplate/jobs/fit.py",
        "ckpt_path=str(plan.resume_from) if plan.resume_from else None,",
        "ckpt_path=None,",
        (
            "tests/test_resume_schedulers.py::test_resume_is_exact_for_every_scheduler[plateau]",
            "tests/test_resume_callbacks.py::test_early_stopping_resumes_with_its_counters",
        ),
    ),
    Mutation(
        "parity",
        "the export job checks the reloaded export against the model (it compares the model "
        "with itself)",
        "dltemplate/jobs/export.py",
        "got = exported(*inputs)",
        "got = model(*inputs)",
        (
            "tests/test_export.py::test_an_export_that_differs_from_the_model_fails_the_parity_check",
        ),
    ),
    Mutation(
        "atomic",
        "records are written to a temporary file and renamed (written in place instead)",
        "dltemplate/records.py",
        'fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")',
        "fd, tmp = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), str(path)",
        (
            "tests/test_record_files.py::"
            "test_a_crash_between_write_and_rename_leaves_the_old_record",
        ),
    ),
    Mutation(
        "direction",
        "losses and errors are minimised, scores maximised (the direction flipped)",
        "dltemplate/results/metric_policy.py",
        'return MIN if words & LOWER_IS_BETTER or last.endswith("loss") else MAX',
        'return MAX if words & LOWER_IS_BETTER or last.endswith("loss") else MIN',
        (
            "tests/test_metric_policy.py::test_errors_losses_and_distances_are_minimised",
            "tests/test_metric_policy.py::test_scores_are_maximised",
        ),
    ),
    # Python's own `random` re-seeds itself in a forked child (os.register_at_fork), so leaving
    # out the child's `random.seed()` breaks nothing; NumPy's generator is the one that needs it.
    Mutation(
        "seed",
        "a warm job's NumPy seed is drawn afresh after the fork (the server's kept)",
        "dltemplate/warm/child.py",
        "numpy.random.seed()",
        "pass  # numpy.random.seed() left out on purpose",
        ("tests/test_warm_jobs.py::test_jobs_run_in_fresh_children_of_the_server",),
    ),
    Mutation(
        "signals",
        "signals to a warm job's script reach the job (not forwarded)",
        "dltemplate/warm/client.py",
        "child.signal(signum)",
        "pass  # child.signal(signum) left out on purpose",
        ("tests/test_warm_jobs.py::test_signals_to_the_script_reach_the_job",),
    ),
    Mutation(
        "sampler",
        "a fit resumed mid-epoch continues the epoch's sample order (its position not restored)",
        "dltemplate/jobs/sampling.py",
        'self.sampler.resume_at(state["epoch"], state["batches"] * (self.batch_size or 1))',
        "pass  # the position left out on purpose",
        (
            "tests/test_resume_parts.py::test_loader_resumes_part_way_through_an_epoch",
            "tests/test_resume_schedulers.py::test_resume_is_exact_for_every_scheduler[plateau]",
        ),
    ),
)


def tracked_files(repo: Path) -> list[str]:
    """The working tree's files that git tracks or would track (results and caches left out)."""
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=repo,
        capture_output=True,
        check=True,
    ).stdout
    return [name for name in out.decode().split("\0") if name and (repo / name).is_file()]


def copy_tree(repo: Path, into: Path) -> None:
    for name in tracked_files(repo):
        target = into / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(repo / name, target)


def run(mutation: Mutation, scratch: Path, timeout: int) -> tuple[str, list[str], float]:
    """(verdict, failed tests, seconds) of one break, in a fresh copy of the tree."""
    source = (REPO / mutation.file).read_text() if (REPO / mutation.file).is_file() else ""
    if mutation.anchor not in source:
        return "anchor not found", [], 0.0
    tree = Path(tempfile.mkdtemp(prefix=f"{mutation.name}-", dir=scratch))
    copy_tree(REPO, tree)
    (tree / mutation.file).write_text(source.replace(mutation.anchor, mutation.broken, 1))
    env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONDONTWRITEBYTECODE": "1"}
    command = [sys.executable, "-m", "pytest", "-q", "-rf", "-p", "no:cacheprovider"]
    started = time.monotonic()
    try:
        result = subprocess.run(
            [*command, *mutation.tests],
            cwd=tree,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return "timed out", [], time.monotonic() - started
    seconds = time.monotonic() - started
    shutil.rmtree(tree, ignore_errors=True)
    failed = re.findall(r"^(?:FAILED|ERROR) (\S+)", result.stdout, re.MULTILINE)
    if result.returncode == 0:
        return "NOT CAUGHT", [], seconds
    if result.returncode != 1 or not failed:  # collection errors, usage errors: no verdict
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-5:])
        return f"error (pytest exit {result.returncode}): {tail}", failed, seconds
    return "caught", failed, seconds


def short(failed: list[str]) -> list[str]:
    """Test names without their file, parametrized cases counted: `test_x (3 cases)`."""
    counts: dict[str, int] = {}
    for node in failed:
        name = node.split("::", 1)[-1].split("[", 1)[0]
        counts[name] = counts.get(name, 0) + 1
    return [f"{name} ({n} cases)" if n > 1 else name for name, n in counts.items()]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("names", nargs="*", help="some of the breaks (default: all)")
    p.add_argument("--list", action="store_true", help="list the breaks and their tests")
    p.add_argument("--timeout", type=int, default=900, help="seconds per break (default 900)")
    opts = p.parse_args(argv)
    chosen = [m for m in MUTATIONS if not opts.names or m.name in opts.names]
    unknown = set(opts.names) - {m.name for m in MUTATIONS}
    if unknown:
        p.error(f"unknown breaks {sorted(unknown)}; choose from {[m.name for m in MUTATIONS]}")
    if opts.list:
        for m in chosen:
            print(f"{m.name}: {m.claim}\n  {m.file}\n  " + "\n  ".join(m.tests))
        return 0
    print("| break | claim | verdict | failing tests | seconds |\n| --- | --- | --- | --- | --- |")
    bad = 0
    with tempfile.TemporaryDirectory(prefix="dlt-mutations-") as scratch:
        for m in chosen:
            verdict, failed, seconds = run(m, Path(scratch), opts.timeout)
            bad += verdict != "caught"
            names = ", ".join(short(failed)) or "-"
            print(f"| {m.name} | {m.claim} | {verdict} | {names} | {seconds:.0f} |", flush=True)
    print(f"\n{len(chosen) - bad} of {len(chosen)} breaks caught.")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
