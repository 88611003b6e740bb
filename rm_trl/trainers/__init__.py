from .base import RewardTrainer
from .pairwise import PairwiseRewardTrainer

__all__ = ["RewardTrainer", "PairwiseRewardTrainer"]
