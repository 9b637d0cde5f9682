"""The template's wrappers: the task wrapper (a LightningModule) and the data wrapper (a
LightningDataModule). Not Snakemake's `wrapper:` directive; see docs/own-task.md."""

from dltemplate.wrappers.data_wrappers import BasicDataWrapper
from dltemplate.wrappers.task_wrappers import BasicTaskWrapper

__all__ = ["BasicDataWrapper", "BasicTaskWrapper"]
