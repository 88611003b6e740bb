"""rm-trl: train and evaluate reward models with transformers, TRL, PEFT and Accelerate."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("rm-trl")  # one source of truth: pyproject.toml
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"

from .config import (  # noqa: E402
    ContrastiveRewardConfig,
    ListwiseRewardConfig,
    PairwiseRewardConfig,
    PointwiseRewardConfig,
    RewardConfig,
)
from .config_stepwise import StepwiseRewardConfig  # noqa: E402
from .data import DataArguments, DataValidationError, load_data, prepare_dataset  # noqa: E402
from .modeling import ensure_step_separator, load_reward_model, setup_pad_token  # noqa: E402
from .trainers import (  # noqa: E402
    ContrastiveRewardTrainer,
    ListwiseRewardTrainer,
    PairwiseRewardTrainer,
    PointwiseRewardTrainer,
    RewardTrainer,
)
from .trainers.stepwise import StepwiseRewardTrainer  # noqa: E402

__all__ = [
    "ContrastiveRewardConfig",
    "ContrastiveRewardTrainer",
    "DataArguments",
    "DataValidationError",
    "ListwiseRewardConfig",
    "ListwiseRewardTrainer",
    "PairwiseRewardConfig",
    "PairwiseRewardTrainer",
    "PointwiseRewardConfig",
    "PointwiseRewardTrainer",
    "RewardConfig",
    "RewardTrainer",
    "StepwiseRewardConfig",
    "StepwiseRewardTrainer",
    "__version__",
    "ensure_step_separator",
    "load_data",
    "load_reward_model",
    "prepare_dataset",
    "setup_pad_token",
]
