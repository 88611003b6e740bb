"""Contrastive family: a good response against bad ones (InfoNCE with in-batch negatives, margin ranking).

Trains on pairs, typically best-vs-worst pairs taken from ranked or rated data (`recipes/contrastive.py` converts
them); it shares the pairwise family's data handling and metrics and changes only the loss.
"""

from __future__ import annotations

from typing import Any

from datasets import Dataset

from ..config import ContrastiveRewardConfig
from ..losses import CONTRASTIVE_LOSS_FUNCTIONS
from .pairwise import PairwiseRewardTrainer


class ContrastiveRewardTrainer(PairwiseRewardTrainer):
    config_class = ContrastiveRewardConfig
    family = "contrastive"
    loss_functions = CONTRASTIVE_LOSS_FUNCTIONS
    args: ContrastiveRewardConfig

    def adapt_raw_dataset(self, dataset: Dataset, args: ContrastiveRewardConfig) -> Dataset:
        # The contrastive losses do not use per-pair margins.
        return dataset.remove_columns("margin") if "margin" in dataset.column_names else dataset

    def loss_settings(self) -> dict[str, Any]:
        return {}  # no margins: `adapt_raw_dataset` drops the column

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        rewards = self.compute_rewards(model, inputs).view(-1, 2)
        chosen, rejected = rewards[:, 0], rewards[:, 1]
        loss = self.family_loss(rewards, chosen, rejected)
        self.track_batch_metrics(rewards)
        return (loss, rewards) if return_outputs else loss
