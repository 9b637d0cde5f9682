"""`main.py predict`: a trained run's model on a file of new inputs.

Reads `--input` (a .npy, .npz or .csv array of raw samples, or any file the data wrapper's
`input_reader` reads), checks it against the model's signature, and writes a CSV with the predict
job's columns (predicted class and probabilities, or the regression outputs) to `--output`
(default: beside the input, `<input>.predictions.csv`). It runs the run's exported program when
the export is current, else its best checkpoint. Nothing of the run's folder changes.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from dltemplate.cli.options import add_registry_option
from dltemplate.cli.user_paths import NewUserPath, UserPath


def cmd_predict(args: argparse.Namespace) -> int:
    from dltemplate.cli.declared_run import registered_run
    from dltemplate.workflow.targets import fitted_input

    run, spec, settings = registered_run(args)
    threads = int((settings.get("threads") or {}).get("predict") or 1)
    output = args.output or Path(args.input).with_suffix(".predictions.csv")
    from dltemplate.jobs.predict_file import predict_file

    done = predict_file(spec, fitted_input(run), threads, args.input, output)
    print(f"Predicted {done['rows']} samples with {done['used']}: {done['output']}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "predict",
        help="a trained run's model on a file of new inputs (CSV out)",
        description=__doc__.split("\n\n", 1)[1],
    )
    parser.add_argument("-p", "--proj", required=True, help="the project (id or name)")
    parser.add_argument("-e", "--exp", required=True, help="the experiment (id or name)")
    parser.add_argument("-n", "--name", required=True, help="the trained run")
    parser.add_argument(
        "--input", required=True, metavar="PATH", action=UserPath, help="the new samples"
    )
    parser.add_argument(
        "--output",
        metavar="PATH",
        action=NewUserPath,
        help="the CSV to write (default: <input>.predictions.csv)",
    )
    add_registry_option(parser)
    parser.set_defaults(func=cmd_predict)
