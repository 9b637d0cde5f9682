"""Diabetes regression with a plain nn.Sequential MLP: the second example project.

scikit-learn's diabetes data (10 standardised features -> a standardised progression score);
the dataset returns targets of shape [1] per sample, so batches are [N, 1] like the model's
output (regression targets take the outputs' shape). MSE loss; MAE, RMSE and R2 metrics.
"""

from dltemplate import RootConfig
from wrappers import BasicTaskWrapper

from .components.data_wrappers.diabetes import get_data_wrapper
from .components.models.sequential_mlp import get_model
from .components.task_wrappers.regressor import get_regressor
from .components.trainers.default import get_trainer


def get_task_wrapper(*, lr: float = 3e-3) -> BasicTaskWrapper:
    return get_regressor(model=get_model(width=64), lr=lr)


def get_root_config_instance() -> RootConfig:
    return RootConfig(
        task_wrapper=get_task_wrapper,
        data_wrapper=get_data_wrapper,
        trainer=get_trainer,
    )
