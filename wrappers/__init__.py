"""The template's wrappers: the task wrapper (a LightningModule) and the data wrapper (a
LightningDataModule). Not Snakemake's `wrapper:` directive; see wrappers/README.md."""

from wrappers.data_wrappers import BasicDataWrapper
from wrappers.task_wrappers import BasicTaskWrapper

__all__ = ["BasicDataWrapper", "BasicTaskWrapper"]
