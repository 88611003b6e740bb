"""Contrastive family: a good response against bad ones (InfoNCE with in-batch negatives, margin ranking).

Trains on pairs, typically best-vs-worst pairs taken from ranked or rated data (`recipes/contrastive.py` converts
them); it shares the pairwise family's data handling and metrics and changes only the loss.
"""

from __future__ import annotations

from typing import Any

from datasets import Dataset

from ..config import ContrastiveRewardConfig
from ..losses import info_nce_loss, pairwise_hinge_loss, reward_centering_penalty
from .pairwise import PairwiseRewardTrainer


class ContrastiveRewardTrainer(PairwiseRewardTrainer):
    config_class = ContrastiveRewardConfig
    family = "contrastive"
    args: ContrastiveRewardConfig

    def adapt_raw_dataset(self, dataset: Dataset, args: ContrastiveRewardConfig) -> Dataset:
        # The contrastive losses do not use per-pair margins.
        return dataset.remove_columns("margin") if "margin" in dataset.column_names else dataset

    def loss_description(self) -> dict[str, Any]:
        args = self.args
        if args.loss_type == "infonce":
            described = {
                "type": "infonce",
                "temperature": args.temperature,
                "in_batch_negatives": args.in_batch_negatives,
            }
        else:
            described = {"type": "margin_ranking", "ranking_margin": args.ranking_margin}
        if args.center_rewards_coefficient:
            described["center_rewards_coefficient"] = args.center_rewards_coefficient
        return described

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        rewards = self.compute_rewards(model, inputs).view(-1, 2)
        chosen, rejected = rewards[:, 0], rewards[:, 1]
        if self.args.loss_type == "infonce":
            loss = info_nce_loss(chosen, rejected, self.args.temperature, self.args.in_batch_negatives)
        else:
            loss = pairwise_hinge_loss(chosen, rejected, hinge_margin=self.args.ranking_margin)
        if self.args.center_rewards_coefficient:
            loss = loss + self.args.center_rewards_coefficient * reward_centering_penalty(rewards)
        self.track_batch_metrics(rewards)
        return (loss, rewards) if return_outputs else loss
