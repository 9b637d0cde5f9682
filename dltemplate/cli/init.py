"""`main.py init`: a new project with its first experiment."""

from __future__ import annotations

import argparse

from dltemplate.cli.options import add_registry_option


def cmd_init(args: argparse.Namespace) -> int:
    from dltemplate.registry import edit as registry_edit

    path = registry_edit.create_project(
        args.registry, args.proj_name, args.proj_desc, args.exp_name, args.exp_desc
    )
    from dltemplate.registry.model import load_project

    project = load_project(path)
    exp_id = project.experiments[args.exp_name].id
    print(
        f"Created project {args.proj_name} (id {project.id}) with experiment {args.exp_name} "
        f"(id {exp_id}) in {path}"
    )
    print(f"Next: main.py exec -p {project.id} -e {exp_id} -n NAME -d DESC -c CONFIG")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("init", help="create a project with its first experiment")
    parser.add_argument("-pn", "--proj-name", "--proj_name", required=True, help="project name")
    parser.add_argument(
        "-pd", "--proj-desc", "--proj_desc", required=True, help="what the project is about"
    )
    parser.add_argument(
        "-en", "--exp-name", "--exp_name", required=True, help="first experiment's name"
    )
    parser.add_argument(
        "-ed", "--exp-desc", "--exp_desc", required=True, help="what the experiment compares"
    )
    add_registry_option(parser)
    parser.set_defaults(func=cmd_init)
