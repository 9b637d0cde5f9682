"""Oracle-MNIST (28x28 oracle-bone characters, MNIST format) with the small CNN.

Link the data first: `ln -s /absolute/path/to/oracle-mnist data/oracle-mnist`, a folder with
train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and
t10k-labels-idx1-ubyte.gz.
"""

from dltemplate import RootConfig
from wrappers import BasicTaskWrapper

from .components.data_wrappers.mnist_idx import get_data_wrapper
from .components.models.small_cnn import get_model
from .components.task_wrappers.classifier import get_classifier
from .components.trainers.default import get_trainer


def get_task_wrapper(*, lr: float = 1e-3) -> BasicTaskWrapper:
    return get_classifier(model=get_model(channels=48), lr=lr)


def get_root_config_instance() -> RootConfig:
    return RootConfig(
        task_wrapper=get_task_wrapper,
        data_wrapper=get_data_wrapper,
        trainer=get_trainer,
    )
