"""rm-trl: train and evaluate reward models with transformers, TRL, PEFT and Accelerate."""

__version__ = "0.1.0"

from .config import DataArguments, PairwiseRewardConfig, RewardConfig  # noqa: E402
from .data import DataValidationError, load_data, prepare_dataset  # noqa: E402
from .modeling import load_reward_model, setup_pad_token  # noqa: E402
from .trainers import PairwiseRewardTrainer, RewardTrainer  # noqa: E402

__all__ = [
    "DataArguments",
    "DataValidationError",
    "PairwiseRewardConfig",
    "PairwiseRewardTrainer",
    "RewardConfig",
    "RewardTrainer",
    "__version__",
    "load_data",
    "load_reward_model",
    "prepare_dataset",
    "setup_pad_token",
]
