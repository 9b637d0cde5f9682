"""`main.py hparams`: every overridable path of a config, with its value, type and origin.

Builds the config for one job (as the job would, without data or training) and prints the
getter tree: each getter with where it is defined, each of its keyword arguments with the value
it ran with, its type hint, and where the value came from: `default` (the getter's default),
`argument` (passed by the getter that called it), `override` (`--set`) or `archived` (the
overrides of the run that an archived config comes from). `--json` prints the same for
scripts, plus the hparams.yaml that a fit would write.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from dltemplate.cli.common import WORKFLOW_CONFIG, add_set_option, set_overrides, workflow_settings
from dltemplate.config.root import JOB_TYPES

ORIGIN_STYLES = {
    "default": "dim",
    "argument": "cyan",
    "override": "bold yellow",
    "archived": "magenta",
}


def parameter_rows(built) -> dict[str, dict[str, Any]]:
    """path -> {"value", "type", "origin"} for every keyword argument of every getter called."""
    build = built.build
    rows: dict[str, dict[str, Any]] = {}
    for path, type_name in build.types.items():
        node: Any = build.tree
        for part in path.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        rows[path] = {
            "value": node,
            "type": type_name,
            "origin": build.origins.get(path, "missing"),
        }
    return rows


def _value_text(value: Any) -> str:
    return json.dumps(value)  # what --set takes back (JSON is YAML)


def _short(where: str) -> str:
    """`/abs/project/configs/x.py:12 get_x()` -> `configs/x.py:12 get_x()`."""
    from dltemplate.records import portable_path

    location, _, name = where.partition(" ")
    file, _, line = location.rpartition(":")
    return f"{portable_path(file)}:{line} {name}" if file else where


def print_tree(config: str, job: str, seed: dict[str, Any], built, show_objects: bool) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.tree import Tree

    def leaf(name: str, row: dict[str, Any]) -> str:
        style = ORIGIN_STYLES.get(row["origin"], "red")
        return (
            f"[bold]{escape(name)}[/] = {escape(_value_text(row['value']))}  "
            f"[green]{escape(row['type'])}[/]  [{style}]{row['origin']}[/]"
        )

    rows = parameter_rows(built)
    tree = Tree(f"[bold]{escape(config)}[/] (job {job})")
    tree.add(leaf("seed", seed) + (f" [dim]({seed['from']})[/]" if seed.get("from") else ""))
    nodes = {"": tree}
    # Getters in the order they were called; each one's arguments before the getters it calls.
    for path, where in built.build.getters.items():
        parent, _, name = path.rpartition(".")
        function, _, location = _short(where).partition(" ")
        label = f"[bold magenta]{escape(name)}[/]  {escape(location)}  [dim]{escape(function)}[/]"
        nodes[path] = nodes.get(parent, tree).add(label)
        for key, row in rows.items():
            if key.rpartition(".")[0] == path:
                nodes[path].add(leaf(key.rpartition(".")[2], row))
    # Piped output is read by people too: wider than rich's 80 columns, so lines rarely wrap.
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 120)
    console.print(tree)
    if show_objects:
        import yaml

        console.print("\n[bold]objects[/] (what the getters built, recorded in hparams.yaml):")
        console.print(
            escape(yaml.safe_dump(built.hparams["objects"], sort_keys=False)), soft_wrap=True
        )


def cmd_hparams(args: argparse.Namespace) -> int:
    from dltemplate.config.build import build_run

    overrides = set_overrides(args)
    default_seed = int(workflow_settings(args.workflow).get("seed", 0))
    built = build_run(
        args.config,
        job=args.job,
        overrides=overrides,
        seed=default_seed,
        source="--set on the command line",
    )
    seed = {"value": built.hparams["seed"], "type": "int", "origin": built.build.origins["seed"]}
    if args.json:
        data = {
            "config": args.config,
            "job": args.job,
            "paths": {"seed": seed, **parameter_rows(built)},
            "hparams": built.hparams,
        }
        print(json.dumps(data, indent=2))
        return 0
    if seed["origin"] == "default":
        seed["from"] = args.workflow
    print_tree(args.config, args.job, seed, built, args.objects)
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "hparams",
        help="show a config's overridable paths with their values, types and origins",
        description=__doc__.split("\n\n")[1],
    )
    parser.add_argument(
        "-c", "--config", required=True, help="a root config (or a run's archived_config.py)"
    )
    add_set_option(parser)
    parser.add_argument(
        "-j", "--job", choices=JOB_TYPES, default="fit", help="the job to build for (default: fit)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")
    parser.add_argument(
        "--objects",
        action="store_true",
        help="also print the constructor arguments of the objects the getters built",
    )
    parser.add_argument(
        "--workflow",
        default=WORKFLOW_CONFIG,
        metavar="FILE",
        help=f"where the global seed is read (default: {WORKFLOW_CONFIG})",
    )
    parser.set_defaults(func=cmd_hparams)
