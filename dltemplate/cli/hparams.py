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

from dltemplate.cli.common import (
    SET_SOURCE,
    WORKFLOW_CONFIG,
    add_set_option,
    set_overrides,
    workflow_settings,
)
from dltemplate.cli.options import add_registry_option
from dltemplate.cli.user_paths import UserPath
from dltemplate.config.root import JOB_TYPES
from dltemplate.errors import UserError

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
    console.print(
        "[dim]Any other lightning.Trainer argument: --set trainer.<argument>=<value> "
        "(docs/configs.md)[/]"
    )
    if show_objects:
        import yaml

        console.print("\n[bold]objects[/] (what the getters built, recorded in hparams.yaml):")
        console.print(
            escape(yaml.safe_dump(built.hparams["objects"], sort_keys=False)), soft_wrap=True
        )


def seed_source(origin: str, sets: dict[str, Any], run: Any, workflow: str) -> str:
    """Where the seed came from: --set, the run's overrides, its experiment's sweep, the
    archived config, or the workflow's global seed (the original design's GLOBAL_SEED)."""
    if "seed" in sets:
        return SET_SOURCE
    if run is not None and "seed" in run.overrides:
        if run.swept:
            return f"experiment {run.proj}/{run.exp}: its sweep's seeds: in {run.source}"
        return f"run {run.key}: its overrides in {run.source}"
    if origin == "archived":
        return "the archived config's overrides"
    return f"workflow: seed in {workflow}, the global seed (GLOBAL_SEED)"


def _run_to_build(args: argparse.Namespace) -> Any:
    """The registry's run that `-p -e -n` name, or None for `-c CONFIG`."""
    if (args.config is None) == (args.name is None):
        raise UserError("hparams takes a config (-c CONFIG) or a declared run (-p P -e E -n R)")
    if args.name is None:
        return None
    if args.proj is None or args.exp is None:
        raise UserError("hparams -n RUN needs its project and experiment: -p P -e E -n RUN")
    from dltemplate.registry.model import load_registry

    return load_registry(args.registry).run(args.proj, args.exp, args.name)


def cmd_hparams(args: argparse.Namespace) -> int:
    from dltemplate.config.build import build_run

    run = _run_to_build(args)
    sets = set_overrides(args)
    config = run.config if run is not None else args.config
    overrides = {**(run.overrides if run is not None else {}), **sets}
    default_seed = int(workflow_settings(args.workflow).get("seed", 0))
    built = build_run(
        config,
        job=args.job,
        overrides=overrides,
        seed=default_seed,
        source=SET_SOURCE if run is None else f"{SET_SOURCE} or {run.source}",
    )
    origin = built.build.origins["seed"]
    seed = {"value": built.hparams["seed"], "type": "int", "origin": origin}
    seed["from"] = seed_source(origin, sets, run, args.workflow)
    if args.json:
        data = {
            "config": config,
            "job": args.job,
            "paths": {"seed": seed, **parameter_rows(built)},
            "hparams": built.hparams,
        }
        print(json.dumps(data, indent=2))
        return 0
    print_tree(config, args.job, seed, built, args.objects)
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "hparams",
        help="show a config's overridable paths with their values, types and origins",
        description=__doc__.split("\n\n")[1],
    )
    parser.add_argument(
        "-c", "--config", action=UserPath, help="a root config (or a run's archived_config.py)"
    )
    parser.add_argument(
        "-p", "--proj", help="with -e and -n: a declared run's project (id or name)"
    )
    parser.add_argument("-e", "--exp", help="the run's experiment (id or name)")
    parser.add_argument("-n", "--name", help="the run: its config, overrides and seed")
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
    add_registry_option(parser)
    parser.set_defaults(func=cmd_hparams)
