"""The training benchmarks' config: the example's classifier and trainer getters, a SmallCNN on
synthetic 28x28 images held in memory.

A lone config file (bench/configs/ is no package), so the repo's components are imported by
absolute path: they build the same objects as in the example project, but their arguments are
not override paths here. The sizes that the benchmarks vary are this file's own getters.
"""

from functools import partial

from bench.clock import EpochClock
from bench.common import synthetic_images
from configs.components.task_wrappers.classifier import get_classifier
from configs.components.trainers.default import get_trainer as get_default_trainer
from dltemplate import RootConfig
from models.small_cnn import SmallCNN
from wrappers import BasicDataWrapper, BasicTaskWrapper


def get_model(*, channels: int = 4, dropout: float = 0.1) -> SmallCNN:
    return SmallCNN(in_channels=1, num_classes=10, channels=channels, dropout=dropout)


def get_task_wrapper(*, lr: float = 1e-3) -> BasicTaskWrapper:
    return get_classifier(model=get_model(), num_classes=10, lr=lr)


def get_data_wrapper(
    *, n_train: int = 6400, n_val: int = 1280, batch_size: int = 64
) -> BasicDataWrapper:
    return BasicDataWrapper(
        train_dataset=partial(synthetic_images, n_train, seed=0),
        val_dataset=partial(synthetic_images, n_val, seed=1),
        batch_size=batch_size,
        num_workers=0,  # tensors in memory, as in the digits example
    )


def get_trainer(
    *,
    max_epochs: int = 4,
    accelerator: str = "cpu",
    precision: str = "32-true",
    deterministic: bool = True,
    epoch_clock: bool = False,  # True: bench/step_overhead.py times the fit job's epochs
) -> dict:
    settings = get_default_trainer(
        max_epochs=max_epochs,
        accelerator=accelerator,
        devices=1,
        precision=precision,
        deterministic=deterministic,
    )
    if epoch_clock:  # the trainer getter's callbacks go to the fit job's Trainer
        settings["callbacks"] = [EpochClock()]
    return settings


def get_root_config_instance() -> RootConfig:
    return RootConfig(
        task_wrapper=get_task_wrapper, data_wrapper=get_data_wrapper, trainer=get_trainer
    )
