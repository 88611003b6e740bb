"""Reward normalisation at export: measure the exported model's rewards, then bake `(r - mean) / std` into its
head (when the head's last layer has a bias) or store the statistics for rm-trl's consumers to apply."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import numpy as np
from transformers import PreTrainedModel

from ..data.pipeline import PreparedData
from ..scoring import RewardScorer
from .heads import bake_normalization

logger = logging.getLogger(__name__)

MAX_TRAIN_ROWS = 2000  # without eval data, the statistics come from at most this many training rows


def reward_normalizer(tokenizer, prepared: dict[str, PreparedData]):
    """A normalizer for `SequenceClassificationExporter`: statistics on the eval split, else on up to
    `MAX_TRAIN_ROWS` training rows."""

    def normalize(model: PreTrainedModel) -> tuple[PreTrainedModel, dict[str, Any]]:
        split = "eval" if "eval" in prepared else "train"
        data = prepared[split]
        if split == "train" and len(data.dataset) > MAX_TRAIN_ROWS:
            data = dataclasses.replace(data, dataset=data.dataset.select(range(MAX_TRAIN_ROWS)))
        was_training = model.training
        rewards = np.concatenate(RewardScorer(model, tokenizer).score_prepared(data).scalar_rewards())
        model.train(was_training)
        mean, std = float(rewards.mean()), float(rewards.std()) or 1.0
        baked = bake_normalization(model, mean, std)
        stats = {
            "mean": mean,
            "std": std,
            "computed_on": f"{split} ({len(rewards)} responses)",
            "applied": "baked_into_head" if baked is not None else "stored",
        }
        logger.info("Reward normalisation: %s", stats)
        return (baked if baked is not None else model), stats

    return normalize
