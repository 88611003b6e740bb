"""The loss-family trainers. A family is one module here (its trainer class names its `family`, which registers it
in `FAMILIES`); every module of this package is imported below, so a new family needs no line anywhere else."""

import importlib
import pkgutil

from .base import FAMILIES, RewardTrainer
from .contrastive import ContrastiveRewardTrainer
from .listwise import ListwiseRewardTrainer
from .pairwise import PairwiseRewardTrainer
from .pointwise import PointwiseRewardTrainer

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")


__all__ = [
    "FAMILIES",
    "ContrastiveRewardTrainer",
    "ListwiseRewardTrainer",
    "PairwiseRewardTrainer",
    "PointwiseRewardTrainer",
    "RewardTrainer",
]
