"""`main.py add-exp`: a new experiment in a project."""

from __future__ import annotations

import argparse

from dltemplate.cli.options import add_registry_option


def cmd_add_exp(args: argparse.Namespace) -> int:
    from dltemplate.registry import edit as registry_edit

    number = registry_edit.add_experiment(args.registry, args.proj, args.name, args.desc)
    print(f"Added experiment {args.proj}/{args.name} (id {number})")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("add-exp", help="add an experiment to a project")
    parser.add_argument("-p", "--proj", required=True, help="the project")
    parser.add_argument("-n", "--name", required=True, help="the experiment's name")
    parser.add_argument("-d", "--desc", required=True, help="what the experiment compares")
    add_registry_option(parser)
    parser.set_defaults(func=cmd_add_exp)
