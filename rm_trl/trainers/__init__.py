from .base import RewardTrainer
from .contrastive import ContrastiveRewardTrainer
from .listwise import ListwiseRewardTrainer
from .pairwise import PairwiseRewardTrainer
from .pointwise import PointwiseRewardTrainer

TRAINERS = {
    "pairwise": PairwiseRewardTrainer,
    "pointwise": PointwiseRewardTrainer,
    "listwise": ListwiseRewardTrainer,
    "contrastive": ContrastiveRewardTrainer,
}

__all__ = [
    "TRAINERS",
    "ContrastiveRewardTrainer",
    "ListwiseRewardTrainer",
    "PairwiseRewardTrainer",
    "PointwiseRewardTrainer",
    "RewardTrainer",
]
