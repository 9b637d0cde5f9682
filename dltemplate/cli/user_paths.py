"""Paths typed on the command line are the user's: relative to the folder the command was typed
in, which may be any folder inside the project. The command works in the project's folder
(dltemplate.project.enter), so each such path is rewritten relative to that folder. Options that
take a path declare it with `action=UserPath` (a file that exists, or a run's name when none
does) or `action=NewUserPath` (a file to write); their defaults, relative to the project, stay.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

GIVEN = "user_paths"  # the namespace's list of (dest, must_exist) of the options given


class UserPath(argparse.Action):
    """A path that exists where the command was typed; a value that does not (a run's
    proj/exp/run) is left as typed."""

    must_exist = True

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        setattr(namespace, self.dest, values)
        vars(namespace).setdefault(GIVEN, []).append((self.dest, self.must_exist))


class NewUserPath(UserPath):
    """A path to write, relative to where the command was typed."""

    must_exist = False


def rebase(args: argparse.Namespace, typed_in: Path, root: Path) -> None:
    """Rewrite each path the user typed in `typed_in` relative to `root`, the project's folder."""
    if typed_in.resolve() == root.resolve():
        return
    for dest, must_exist in vars(args).get(GIVEN, ()):
        value = getattr(args, dest)
        if not value or Path(value).is_absolute():
            continue
        if must_exist and not (typed_in / value).exists():
            continue
        setattr(args, dest, os.path.relpath(typed_in / value, root))
