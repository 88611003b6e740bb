"""rm-trl: train and evaluate reward models with transformers, TRL, PEFT and Accelerate."""

__version__ = "0.1.0"

from .config import (  # noqa: E402
    ContrastiveRewardConfig,
    DataArguments,
    ListwiseRewardConfig,
    PairwiseRewardConfig,
    PointwiseRewardConfig,
    RewardConfig,
)
from .data import DataValidationError, load_data, prepare_dataset  # noqa: E402
from .modeling import load_reward_model, setup_pad_token  # noqa: E402
from .trainers import (  # noqa: E402
    ContrastiveRewardTrainer,
    ListwiseRewardTrainer,
    PairwiseRewardTrainer,
    PointwiseRewardTrainer,
    RewardTrainer,
)

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
    "__version__",
    "load_data",
    "load_reward_model",
    "prepare_dataset",
    "setup_pad_token",
]
