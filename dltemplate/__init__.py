"""dltemplate: the engine of the template (configs, registry, jobs, records).

Importing this package is cheap: it never imports torch or Lightning, because Snakemake imports
it while parsing the workflow, and every cluster job parses the workflow again.
"""

from dltemplate.config.root import RootConfig

__all__ = ["FINGERPRINT_VERSION", "RootConfig", "__version__"]
# The engine's version (pyproject.toml reads it from here). Each job records the version it ran
# with; a new one reruns nothing by itself (docs/upgrading.md). CHANGELOG.md says what each
# version changed.
__version__ = "0.1.0"
# Bumped only by a change of the engine that changes results, with a "Changes results" entry in
# CHANGELOG.md: it is one of every job's run inputs, so a bump reruns every job
# (dltemplate.workflow.job_spec).
FINGERPRINT_VERSION = 1
