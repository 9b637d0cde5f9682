"""Before any job starts: every file the jobs will write can be written.

Snakemake removes a job's old outputs and logs before it runs the job (`-R test` removes
`test.done`), and a run folder that is read-only (or immutable, `chattr +i`, which stops root
too) turns that into a PermissionError traceback from inside Snakemake. The workflow's
`onstart:` hands the files of the jobs that will run to `check_writable`, and stops with one line
naming the folder instead. Only the jobs that run are checked: a finished run kept read-only
on purpose stays out of the way.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from dltemplate.errors import UserError
from dltemplate.records import unwritable


def check_writable(paths: Iterable[str | os.PathLike]) -> None:
    """Raise one UserError naming the first place that the jobs cannot write, and how many."""
    refused = unwritable(paths)
    if refused:
        more = f" (and {len(refused) - 1} more)" if len(refused) > 1 else ""
        raise UserError(
            f"Cannot write {refused[0]}{more}: it is read-only or immutable; make it writable "
            f"(chmod u+w {refused[0]}, or chattr -i as root) and run again; no job was started"
        )
