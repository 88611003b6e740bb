"""Listwise family: K ranked responses per prompt (InstructGPT all-pairs, Plackett-Luce, best-of-N)."""

from __future__ import annotations

import numpy as np
import torch

from ..config import ListwiseRewardConfig
from ..data.formats import RANKED_SCHEMA
from ..losses import LISTWISE_LOSS_FUNCTIONS, pad_groups
from ..metrics import ranked_metrics
from .base import RewardTrainer


class ListwiseRewardTrainer(RewardTrainer):
    """Trains a scalar reward from ranked lists: `{"prompt", "completions": [...], "ranks": [...]}`.

    K varies per row and ties are allowed (rank 0 = best). Each prompt's K responses go through the model once
    each, in the same forward as the rest of the batch; the loss then compares them within their row.
    """

    config_class = ListwiseRewardConfig
    schema = RANKED_SCHEMA
    family = "listwise"
    loss_functions = LISTWISE_LOSS_FUNCTIONS
    args: ListwiseRewardConfig
    row_unit = "ranked lists"

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        rewards = self.compute_rewards(model, inputs)[:, 0]
        grouped, mask = pad_groups(rewards, inputs["group_sizes"])
        ranks, _ = pad_groups(inputs["ranks"], inputs["group_sizes"], fill=float("inf"))
        loss = self.family_loss(rewards, grouped, ranks, mask)
        # Per row: (reward, rank) for each response; padding has rank -1.
        predictions = torch.stack([grouped.detach(), torch.where(mask, ranks, -1.0)], dim=-1)
        self.track_batch_metrics(predictions)
        return (loss, predictions) if return_outputs else loss

    def metrics(self, predictions: np.ndarray) -> dict[str, float]:
        rewards, ranks = predictions[..., 0], predictions[..., 1]
        valid = ranks >= 0
        out = ranked_metrics(rewards, ranks)
        out["reward_mean"] = float(rewards[valid].mean())
        out["reward_std"] = float(rewards[valid].std())
        return out
