"""dltemplate: the engine of the template (configs, registry, jobs, records).

Importing this package is cheap: it never imports torch or Lightning, because Snakemake imports
it while parsing the workflow, and every cluster job parses the workflow again.
"""

from dltemplate.config.root import RootConfig

__all__ = ["RootConfig"]
__version__ = "0.1.0"
