"""This project's wrappers. The engine's base wrappers are re-exported here, so configs import
them from the project (`from wrappers import BasicTaskWrapper`): a task wrapper (a
LightningModule that owns model, loss, optimizer, LR scheduler and metrics) and a data wrapper
(a LightningDataModule over any torch Datasets). Not Snakemake's `wrapper:` directive.

Write your own wrapper in this folder when the basic ones do not fit (a GAN's two optimizers,
say): subclass BasicTaskWrapper or LightningModule, keep the model injected, and return it from
a getter. What the engine calls on a wrapper: docs/own-task.md, "The wrappers' contract".
"""

from dltemplate.wrappers import BasicDataWrapper, BasicTaskWrapper
from dltemplate.wrappers.callbacks import GradNormLogger

__all__ = ["BasicDataWrapper", "BasicTaskWrapper", "GradNormLogger"]
