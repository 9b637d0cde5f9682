"""Judge the goals of stored result files again from their per-repetition values.

`python -m bench.regoal orchestration sweep_throughput` rewrites the goals of
bench/results/<name>.json with the scripts' own `goals(raw)` (the rule of
bench.common.verdict: met only when every repetition meets the goal) and says so in the
file's notes. Nothing is measured; the tables stay as they were.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
from collections.abc import Sequence
from pathlib import Path

from bench.common import RESULTS

NAMES = (
    "step_overhead",
    "data_path",
    "orchestration",
    "sweep_throughput",
    "warm_jobs",
    "search_quality",
    "gpu_step_overhead",
)


def regoal(path: Path) -> bool:
    """Rewrite the goals in `path`; False when they were already so."""
    data = json.loads(path.read_text())
    goals = importlib.import_module(f"bench.{data['name']}").goals(data["raw"])
    if goals == data["goals"]:
        return False
    data["goals"] = goals
    day = dt.datetime.now().astimezone().strftime("%Y-%m-%d")
    data["notes"].append(
        f"Goals judged again on {day} from the stored per-repetition values "
        f"(`python -m bench.regoal {data['name']}`): a goal is met only when every repetition "
        "meets it, and not shown when the repetitions fall on both sides of it."
    )
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    tmp.replace(path)
    return True


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("names", nargs="+", choices=NAMES)
    p.add_argument("--results", type=Path, default=RESULTS)
    opts = p.parse_args(argv)
    for name in opts.names:
        changed = regoal(opts.results / f"{name}.json")
        print(f"{name}: {'goals rewritten' if changed else 'unchanged'}")


if __name__ == "__main__":
    main()
