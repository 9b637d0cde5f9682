"""Digits with an MLP: the example project's baseline run."""

from dltemplate import RootConfig
from wrappers import BasicTaskWrapper

from .components.data_wrappers.digits import get_data_wrapper
from .components.models.mlp import get_model
from .components.task_wrappers.classifier import get_classifier
from .components.trainers.default import get_trainer


def get_task_wrapper(*, lr: float = 1e-3) -> BasicTaskWrapper:
    return get_classifier(model=get_model(hidden_dim=128), lr=lr)


def get_root_config_instance() -> RootConfig:
    return RootConfig(
        task_wrapper=get_task_wrapper,
        data_wrapper=get_data_wrapper,
        trainer=get_trainer,
    )
