"""Pairwise family: chosen vs rejected, Bradley-Terry (optionally with margin, label smoothing, centering) or hinge."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from datasets import Dataset

from ..config import PairwiseRewardConfig
from ..data.formats import PAIRWISE_SCHEMA
from ..data.names import RESPONSE_LENGTHS
from ..ensemble import bootstrap_indices, bootstrap_pairs
from ..ensemble_heads import fold_to_mean, head_linear_name
from ..export import SequenceClassificationExporter
from ..export.heads import fold_reward_head
from ..losses import PAIRWISE_LOSS_FUNCTIONS, batch_pearson, head_orthogonality, length_disentangle_loss
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

    def _margin_settings(self) -> dict[str, Any]:
        described: dict[str, Any] = {}
        if "margin" in self.target_names:
            described["margin_scale"] = self.args.margin_scale
        if self.args.fixed_margin:
            described["fixed_margin"] = self.args.fixed_margin
        return described

    @classmethod
    def num_labels(cls, args: PairwiseRewardConfig) -> int:
        if getattr(args, "length_head", False):  # the contrastive family shares this trainer, not these settings
            return 2
        return getattr(args, "ensemble_heads", 1)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        heads = self.num_labels(self.args)
        rewards = self.compute_rewards(model, inputs).view(-1, 2, heads)  # rows of (chosen, rejected) per head
        chosen, rejected = rewards[:, 0], rewards[:, 1]  # [rows, heads]
        margin = inputs["margin"] * self.args.margin_scale if "margin" in inputs else None
        if self.args.fixed_margin:
            margin = self.args.fixed_margin if margin is None else margin + self.args.fixed_margin
        if getattr(self.args, "length_head", False):
            loss, rewards = self._length_head_loss(model, inputs, rewards, margin)
            self.track_batch_metrics(rewards)
            return (loss, rewards) if return_outputs else loss
        if heads == 1:
            chosen, rejected = chosen[:, 0], rejected[:, 0]
        elif self.args.ensemble_bootstrap and model.training:  # each head on its own resample of the batch
            chosen, rejected, margin = bootstrap_pairs(chosen, rejected, margin, self._bootstrap_index(len(chosen)))
        elif isinstance(margin, torch.Tensor):
            margin = margin[:, None]
        loss = self.family_loss(rewards, chosen, rejected, margin)
        rewards = rewards.mean(dim=-1)  # the ensemble's reward (what the export's logits[:, 0] holds)
        self.track_batch_metrics(rewards)
        return (loss, rewards) if return_outputs else loss

    def _length_head_loss(self, model, inputs, rewards: torch.Tensor, margin) -> tuple[torch.Tensor, torch.Tensor]:
        """ODIN: the preferences train quality + length; the length terms and the heads' orthogonality separate them.
        Returns the loss and the quality head's `[rows, 2]` rewards (what the export holds)."""
        total = rewards.sum(dim=-1)
        loss = self.family_loss(total, total[:, 0], total[:, 1], margin)
        quality, length_reward = rewards[..., 0].reshape(-1), rewards[..., 1].reshape(-1)
        lengths = inputs[RESPONSE_LENGTHS]
        loss = loss + self.args.length_correlation_weight * length_disentangle_loss(quality, length_reward, lengths)
        if self.args.orthogonal_weight:
            head = model.get_submodule(head_linear_name(model, 2))
            loss = loss + self.args.orthogonal_weight * head_orthogonality(head.weight)
        if model.training:
            with torch.no_grad():
                lengths = lengths.float()
                self._train_metrics["length_pearson_quality"].append(float(batch_pearson(quality, lengths)))
                self._train_metrics["length_pearson_length_head"].append(float(batch_pearson(length_reward, lengths)))
        return loss, rewards[..., 0]

    def _bootstrap_index(self, rows: int) -> torch.Tensor:
        """Seeded by (seed, step, process): a resumed run redraws the same resamples."""
        seed = (self.args.seed * 1_000_003 + self.state.global_step) * 1_009 + self.args.process_index
        generator = torch.Generator().manual_seed(seed)
        return bootstrap_indices(rows, self.args.ensemble_heads, generator)

    def loss_settings(self) -> dict[str, Any]:
        described = self._margin_settings()
        if getattr(self.args, "length_head", False):
            described["length_head"] = self.args.length_head_metadata()
        elif self.num_labels(self.args) > 1:
            described["ensemble_heads"] = self.args.ensemble_heads
            described["ensemble_bootstrap"] = self.args.ensemble_bootstrap
        return described

    def exporter(self) -> SequenceClassificationExporter:
        exporter = super().exporter()
        ensemble = self.args.ensemble_metadata() if getattr(self.args, "ensemble_heads", 1) > 1 else None
        if ensemble is not None:  # one output, the heads' mean, for every consumer; the heads in a file beside it
            exporter.transform = fold_to_mean
            exporter.metadata_updates = {"ensemble": ensemble, "num_labels": 1}
        if getattr(self.args, "length_head", False):  # the quality head alone: drop the length head's row, exactly
            exporter.transform = lambda model, output_dir: fold_reward_head(model, [1.0, 0.0])
            exporter.metadata_updates = {"length_head": self.args.length_head_metadata(), "num_labels": 1}
        return exporter

    def metrics(self, predictions: np.ndarray) -> dict[str, float]:
        return pairwise_metrics(predictions[:, 0], predictions[:, 1])
