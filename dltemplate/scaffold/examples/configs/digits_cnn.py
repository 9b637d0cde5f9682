"""Digits with a small CNN: the example project's stronger run."""

from dltemplate import RootConfig
from wrappers import BasicTaskWrapper

from .components.data_wrappers.digits import get_data_wrapper
from .components.models.small_cnn import get_model
from .components.task_wrappers.classifier import get_classifier
from .components.trainers.default import get_trainer


def get_task_wrapper(*, lr: float = 3e-3) -> BasicTaskWrapper:  # conv nets take a larger lr here
    return get_classifier(model=get_model(channels=32), lr=lr)


def get_root_config_instance() -> RootConfig:
    return RootConfig(
        task_wrapper=get_task_wrapper,
        data_wrapper=get_data_wrapper,
        trainer=get_trainer,
    )
