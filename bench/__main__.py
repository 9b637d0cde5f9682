"""`python -m bench`: run every benchmark, each in a fresh process, then rewrite BENCHMARKS.md.

`python -m bench step_overhead data_path` runs only those; `--quick` passes on to each (and
writes to bench/.scratch/quick/ instead of bench/results/, so no figures are overwritten).
"""

from __future__ import annotations

import argparse
import subprocess
import sys

from bench.common import REPO, scratch_root
from bench.report import ORDER

SCRIPTS = {name: f"bench.{name}" for name in ORDER}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("names", nargs="*", help=f"some of {', '.join(SCRIPTS)} (default: all)")
    p.add_argument("--quick", action="store_true", help="tiny sizes: check that they run")
    opts = p.parse_args()
    unknown = set(opts.names) - set(SCRIPTS)
    if unknown:
        p.error(f"unknown benchmarks {sorted(unknown)}; choose from {list(SCRIPTS)}")
    failed = []
    for name in opts.names or list(SCRIPTS):
        print(f"== {name}", flush=True)
        cmd = [sys.executable, "-m", SCRIPTS[name]]
        if opts.quick:
            cmd += ["--quick", "--out", str(scratch_root() / "quick")]
        if subprocess.run(cmd, cwd=REPO).returncode != 0:
            failed.append(name)
    if not opts.quick:
        subprocess.run([sys.executable, "-m", "bench.report"], cwd=REPO, check=True)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
