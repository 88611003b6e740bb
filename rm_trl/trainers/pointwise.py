"""Pointwise family: regress each response's rating (MSE, Huber, BCE), one output per attribute."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch
from transformers import PreTrainedModel

from ..config import PointwiseRewardConfig
from ..data.formats import RATED_SCHEMA
from ..export.heads import fold_reward_head
from ..losses import POINTWISE_LOSS_FUNCTIONS
from ..metrics import binary_metrics, rated_metrics
from .base import RewardTrainer


class PointwiseRewardTrainer(RewardTrainer):
    """Trains a reward model on rated responses: `{"prompt", "response", "score"}` (or several attribute columns).

    With several `score_columns` the model has one output per attribute and a masked loss (a missing attribute
    costs nothing); the export folds them into one reward with `attribute_weights`, and the unfolded model is
    saved under `<output_dir>/attributes`. With `standardize_scores`, targets are z-scored with training-set
    statistics that are stored in the export.
    """

    config_class = PointwiseRewardConfig
    schema = RATED_SCHEMA
    family = "pointwise"
    loss_functions = POINTWISE_LOSS_FUNCTIONS
    centers_rewards = False  # regression targets fix the reward scale
    args: PointwiseRewardConfig

    row_unit = "rated responses"

    @classmethod
    def num_labels(cls, args: PointwiseRewardConfig) -> int:
        return len(args.score_columns)

    def headline_metric(self) -> str:
        if self.args.loss_type == "bce":
            return "accuracy"
        columns, headline = self.args.score_columns, super().headline_metric()
        return headline if len(columns) == 1 else f"{headline}_{columns[0]}"

    def parse_options(self, args: PointwiseRewardConfig) -> dict[str, Any]:
        options = super().parse_options(args)
        options.update(score_columns=tuple(args.score_columns), binary_labels=args.loss_type == "bce")
        return options

    def on_data_prepared(self, train_dataset, args: PointwiseRewardConfig) -> None:
        """Target statistics for `standardize_scores`, from the training scores (per attribute)."""
        columns = args.score_columns
        self.score_mean, self.score_std = torch.zeros(len(columns)), torch.ones(len(columns))
        if not args.standardize_scores or args.loss_type == "bce" or train_dataset is None:
            return
        values = np.array([train_dataset[c] for c in columns], dtype=np.float64)  # [A, rows], NaN = missing
        mean = np.nanmean(values, axis=1)
        std = np.nanstd(values, axis=1)
        std[~(std > 0)] = 1.0
        self.score_mean, self.score_std = (
            torch.tensor(mean, dtype=torch.float32),
            torch.tensor(std, dtype=torch.float32),
        )

    def loss_settings(self) -> dict[str, Any]:
        args = self.args
        described: dict[str, Any] = {"score_columns": list(args.score_columns)}
        mean, std = self.score_mean, self.score_std
        if args.standardize_scores and args.loss_type != "bce":
            described["score_normalization"] = {
                c: {"mean": float(m), "std": float(s)} for c, m, s in zip(args.score_columns, mean, std)
            }
        if len(args.score_columns) > 1:
            described["attribute_weights"] = self.attribute_weights()
        return described

    def attribute_weights(self) -> list[float]:
        columns = self.args.score_columns
        return list(self.args.attribute_weights or [1.0 / len(columns)] * len(columns))

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        predictions = self.compute_rewards(model, inputs)  # [rows, attributes]: one response per row
        targets = torch.stack([inputs[c] for c in self.args.score_columns], dim=1)
        mean, std = self.score_mean.to(predictions.device), self.score_std.to(predictions.device)
        if self.args.loss_type == "bce":
            loss = self.family_loss(predictions, predictions, targets)
            in_score_scale = predictions
        else:
            loss = self.family_loss(predictions, predictions, (targets - mean) / std)
            in_score_scale = predictions * std + mean
        outputs = torch.stack([in_score_scale.detach(), targets], dim=-1)  # [rows, attributes, (prediction, target)]
        self.track_batch_metrics(outputs)
        return (loss, outputs) if return_outputs else loss

    def metrics(self, predictions: np.ndarray) -> dict[str, float]:
        scores, targets = predictions[..., 0], predictions[..., 1]
        if self.args.loss_type == "bce":
            return binary_metrics(scores, targets)
        return rated_metrics(scores, targets, list(self.args.score_columns))

    def export_transform(self, model: PreTrainedModel, output_dir: str) -> PreTrainedModel:
        if len(self.args.score_columns) == 1:
            return model
        attributes_dir = os.path.join(output_dir, "attributes")
        model.save_pretrained(attributes_dir)
        self.processing_class.save_pretrained(attributes_dir)
        return fold_reward_head(model, self.attribute_weights())
