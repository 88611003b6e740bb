"""Pairwise family: chosen vs rejected, Bradley-Terry (optionally with margin, label smoothing, centering) or hinge."""

from __future__ import annotations

from typing import Any

import numpy as np
from datasets import Dataset

from ..config import PairwiseRewardConfig
from ..data.formats import PAIRWISE_SCHEMA
from ..losses import PAIRWISE_LOSS_FUNCTIONS
from ..metrics import pairwise_metrics
from .base import RewardTrainer


class PairwiseRewardTrainer(RewardTrainer):
    """Trains a scalar reward from preference pairs.

    Data: `{"prompt", "chosen", "rejected"}` (plain or conversational, explicit or implicit prompt, optional
    `margin`); see `rm_trl.data.formats`. Each batch runs one forward over its 2B sequences.

    Example:
        >>> trainer = PairwiseRewardTrainer(model="sentence-transformers/all-MiniLM-L6-v2",
        ...                                 args=PairwiseRewardConfig(output_dir="rm"), train_dataset=pairs)
        >>> trainer.train(); trainer.save_reward_model()
    """

    config_class = PairwiseRewardConfig
    schema = PAIRWISE_SCHEMA
    family = "pairwise"
    loss_functions = PAIRWISE_LOSS_FUNCTIONS
    args: PairwiseRewardConfig
    row_unit = "pairs"

    def adapt_raw_dataset(self, dataset: Dataset, args: PairwiseRewardConfig) -> Dataset:
        if not args.use_margin and "margin" in dataset.column_names:
            return dataset.remove_columns("margin")
        return dataset

    def loss_settings(self) -> dict[str, Any]:
        described: dict[str, Any] = {}
        if "margin" in self.target_names:
            described["margin_scale"] = self.args.margin_scale
        if self.args.fixed_margin:
            described["fixed_margin"] = self.args.fixed_margin
        return described

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        rewards = self.compute_rewards(model, inputs).view(-1, 2)  # rows of (chosen, rejected)
        chosen, rejected = rewards[:, 0], rewards[:, 1]
        margin = inputs["margin"] * self.args.margin_scale if "margin" in inputs else None
        if self.args.fixed_margin:
            margin = self.args.fixed_margin if margin is None else margin + self.args.fixed_margin
        loss = self.family_loss(rewards, chosen, rejected, margin)
        self.track_batch_metrics(rewards)
        return (loss, rewards) if return_outputs else loss

    def metrics(self, predictions: np.ndarray) -> dict[str, float]:
        return pairwise_metrics(predictions[:, 0], predictions[:, 1])
