"""Stepwise family: process reward models, a logit at the end of every step of a solution (`docs/process_rewards.md`).

Decoders read every step's reward at its separator token in one forward (packed: a problem's prompt once for all its
training solutions); encoders, which pool one vector per sequence, read each step from its own prefix
(`steps_as_prefixes`). The loss (`rm_trl.losses.STEPWISE_LOSS_FUNCTIONS`) sees the flat step logits, their labels
and how many steps each solution has.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..config_stepwise import StepwiseRewardConfig
from ..data.formats import STEPWISE_SCHEMA
from ..data.names import POSITION_COUNTS
from ..data.steps import group_solutions_by_prompt
from ..losses import STEPWISE_LOSS_FUNCTIONS, pad_groups
from ..metrics.stepwise import PADDING_LABEL, stepwise_metrics
from ..modeling import METADATA_KEY, ensure_step_separator, load_reward_model
from ..packing import PackedRewardDataCollator
from ..reward_reading import has_token_head
from .base import RewardTrainer


class StepwiseRewardTrainer(RewardTrainer):
    """Trains a process reward model on stepwise rows: `{"prompt", "completions": [step, ...], "labels": [...]}`.

    Labels are `true` / `false`, soft numbers in [0, 1] or `null` (masked). The step separator
    (`step_separator`) is made one token of the tokenizer before the data is tokenized (added as a special token
    when missing, `rm_trl.modeling.ensure_step_separator`); each step's reward is the logit read at its separator.
    Predictions (training logs, evaluation) are per solution: `[solutions, max_steps, 2]` (logit, label).
    """

    config_class = StepwiseRewardConfig
    schema = STEPWISE_SCHEMA
    family = "stepwise"
    loss_functions = STEPWISE_LOSS_FUNCTIONS
    centers_rewards = False  # step logits are probabilities' logits: nothing to center
    args: StepwiseRewardConfig
    row_unit = "solutions"

    def __init__(self, model, args: StepwiseRewardConfig | None = None, processing_class=None, **kwargs: Any):
        if args is None:
            args = self.config_class(output_dir=f"rm-trl-{self.family}")
        if isinstance(model, str):  # loaded here (seeded, as the base class would) to add the separator first
            from transformers import set_seed

            set_seed(args.seed)
            model, loaded_tokenizer = load_reward_model(model, num_labels=1, pad_token=args.pad_token)
            processing_class = processing_class or loaded_tokenizer
        elif processing_class is None:
            from ..modeling import load_tokenizer

            processing_class = load_tokenizer(model.config._name_or_path)
        # Before LoRA and before the data: the separator must be one token when the rows are tokenized, and a grown
        # embedding must belong to the base weights (so the merged export carries it).
        self.step_separator_id = ensure_step_separator(model, processing_class, args.step_separator)
        self.steps_as_prefixes = not has_token_head(model)
        super().__init__(model, args=args, processing_class=processing_class, **kwargs)
        if self.train_dataset is not None and self.groups_solutions():
            # After the eval-overlap check (which compares solutions one by one): train rows sharing a prompt merge.
            self.train_dataset = group_solutions_by_prompt(self.train_dataset, self.target_names)

    def _record_metadata(self) -> None:
        """The base entry plus `step_rewards`: where consumers read the step rewards and how they combine them
        (`RewardScorer`, `rm-trl score`, `rm-trl serve`, `RewardFunction` and the card follow it)."""
        super()._record_metadata()
        config = self.accelerator.unwrap_model(self.model)
        config = (config.get_base_model() if hasattr(config, "get_base_model") else config).config
        getattr(config, METADATA_KEY)["step_rewards"] = {
            "separator": self.args.step_separator,
            "separator_id": self.step_separator_id,
            "aggregation": self.args.step_aggregation,
            "reading": "prefix" if self.steps_as_prefixes else "token",
            "text_delimiter": self.args.step_text_delimiter,
        }

    def groups_solutions(self) -> bool:
        """Whether training solutions sharing a prompt are merged into one row: `group_solutions`, with packing
        (prompt once) on a per-token-head model (each prefix of `steps_as_prefixes` is its own sequence anyway)."""
        return (
            self.args.group_solutions
            and not self.steps_as_prefixes
            and isinstance(self.data_collator, PackedRewardDataCollator)
        )

    def parse_options(self, args: StepwiseRewardConfig) -> dict[str, Any]:
        return {
            **super().parse_options(args),
            "step_separator": args.step_separator,
            "after_first_error": args.after_first_error,
            "steps_as_prefixes": self.steps_as_prefixes,
        }

    def loss_settings(self) -> dict[str, Any]:
        return {"after_first_error": self.args.after_first_error}

    def solution_sizes(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Steps per solution, in `reward_index` order: a response's positions (per-token head), or a row's
        responses (`steps_as_prefixes`: each prefix is one step of the row's one solution)."""
        return inputs["group_sizes"] if self.steps_as_prefixes else inputs[POSITION_COUNTS]

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        logits = self.compute_rewards(model, inputs)[:, 0]  # [positions]: one logit per step
        labels = inputs["labels"].to(logits.dtype)
        sizes = self.solution_sizes(inputs)
        loss = self.family_loss(logits, logits, labels, sizes)
        grouped_logits, _ = pad_groups(logits.detach(), sizes, fill=PADDING_LABEL)
        grouped_labels, _ = pad_groups(labels, sizes, fill=PADDING_LABEL)  # masked steps stay NaN
        predictions = torch.stack([grouped_logits, grouped_labels], dim=-1)  # [solutions, max_steps, 2]
        self.track_batch_metrics(predictions)
        return (loss, predictions) if return_outputs else loss

    def metrics(self, predictions: np.ndarray) -> dict[str, float]:
        out = stepwise_metrics(predictions)
        if self.model is not None and self.model.training:  # a batch without (say) an erroneous solution: no number
            out = {k: v for k, v in out.items() if np.isfinite(v)}
        return out
