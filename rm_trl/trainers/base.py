"""`RewardTrainer`: the `transformers.Trainer` plumbing every reward-model loss family shares.

A loss family subclasses it and sets three things: its config class, its `RowSchema` (data format), and
`compute_loss` (rewards -> loss, via a pure function from `rm_trl.losses`). Everything else lives here once:
model/tokenizer set-up (pad token, LoRA, dropout), data preparation with its report, the single forward over all
sequences of a batch, training-metric logging, evaluation predictions, and the portable export.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

import numpy as np
import torch
from datasets import Dataset
from transformers import PreTrainedModel, Trainer
from transformers.trainer_utils import EvalPrediction

from ..checkpoints import SafeCheckpointsMixin
from ..config import RewardConfig
from ..data.formats import FORMATS, RowSchema
from ..data.overlap import check_eval_overlap
from ..data.pipeline import (
    LENGTH,
    PROMPT_IDS,
    RESPONSE_IDS,
    REWARD_POSITIONS,
    ROW,
    PreparedData,
    is_prepared,
    prepare_dataset,
)
from ..data.report import DataReport
from ..errors import ConfigError
from ..losses import LossSpec, reward_centering_penalty
from ..modeling import prepare_model_for_training
from ..packing import TokenBudgetBatchSampler, default_collator
from ..reward_reading import reward_reader
from .exporting import ExportingMixin
from .guards import guard_nonfinite_loss, set_cpu_threads

logger = logging.getLogger(__name__)

FAMILIES: dict[str, type[RewardTrainer]] = {}  # family name -> trainer class, filled as trainer classes are defined


class RewardTrainer(ExportingMixin, SafeCheckpointsMixin, Trainer):
    """Base class of the loss-family trainers; not used directly.

    Args:
        model: a Hub id / local path (loaded with `rm_trl.load_reward_model`) or a sequence-classification model.
        args: the family's config (a `RewardConfig` subclass).
        train_dataset / eval_dataset: raw datasets in one of the family's formats (validated, parsed and tokenized
            here; see `rm_trl.data`), or datasets already prepared by `rm_trl.data.prepare_dataset`.
        processing_class: the tokenizer; loaded from the model when omitted.
        peft_config: a `peft.LoraConfig` to train a LoRA adapter (the reward head is always trained and saved).
    `metric_for_best_model: headline` names the family's headline eval metric (`eval_accuracy`, `eval_spearman`, ...).
    """

    config_class: type[RewardConfig] = RewardConfig
    schema: RowSchema
    family: str = "base"
    loss_functions: dict[str, LossSpec] = {}  # the family's registry (`rm_trl.losses`), chosen by `loss_type`
    centers_rewards = True  # whether `center_rewards_coefficient` applies (losses that see reward differences)
    loss_is_scaled_for_ga = False  # losses are means over the batch; Trainer divides by the accumulation steps

    def __init_subclass__(cls, **kwargs):
        """A class that names its `family` registers it (`rm-trl train <family>`); every family's `compute_loss`
        gets the non-finite-loss guard (see `nonfinite_loss`)."""
        super().__init_subclass__(**kwargs)
        if "family" in cls.__dict__:
            FAMILIES[cls.family] = cls
        if "compute_loss" in cls.__dict__:
            cls.compute_loss = guard_nonfinite_loss(cls.__dict__["compute_loss"])

    def __init__(
        self,
        model: str | PreTrainedModel,
        args: RewardConfig | None = None,
        train_dataset: Dataset | None = None,
        eval_dataset: Dataset | dict[str, Dataset] | None = None,
        processing_class=None,
        data_collator=None,
        peft_config=None,
        compute_metrics=None,
        callbacks=None,
        optimizers=(None, None),
        **kwargs,
    ):
        if args is None:
            args = self.config_class(output_dir=f"rm-trl-{self.family}")
        if args.max_steps <= 0 and args.num_train_epochs <= 0:
            raise ConfigError(
                f"max_steps={args.max_steps} and num_train_epochs={args.num_train_epochs}: nothing would be trained"
            )
        # The export is uploaded once, complete, after training (`push_to_hub` below); the Trainer's own pushes
        # (every checkpoint, raw weights over the export) stay off.
        self.push_export_at_end = bool(args.push_to_hub)
        args.push_to_hub = False
        if args.use_cpu:
            set_cpu_threads(args.cpu_threads)
        model, processing_class = prepare_model_for_training(
            model,
            processing_class,
            args,
            num_labels=self.num_labels(args),
            family=self.family,
            peft_config=peft_config,
        )

        self.data_reports: dict[str, DataReport] = {}
        self.prepared: dict[str, PreparedData] = {}
        train_dataset = self._prepare(train_dataset, "train", processing_class, args)
        if isinstance(eval_dataset, dict):
            eval_dataset = {k: self._prepare(v, f"eval_{k}", processing_class, args) for k, v in eval_dataset.items()}
        else:
            eval_dataset = self._prepare(eval_dataset, "eval", processing_class, args)
        if train_dataset is not None and isinstance(eval_dataset, Dataset) and "eval" in self.data_reports:
            self.prepared["eval"] = check_eval_overlap(train_dataset, self.prepared["eval"], args.eval_overlap)
            eval_dataset = self.prepared["eval"].dataset
        self.on_data_prepared(train_dataset, args)
        self.target_names = self._target_names()
        self.read_rewards = reward_reader(model)  # at the positions the data names, padded or packed
        if data_collator is None:
            data_collator = default_collator(model, processing_class, args, self.target_names)
        super().__init__(
            model=model,
            args=args,
            data_collator=data_collator,
            train_dataset=train_dataset,
            eval_dataset=eval_dataset,
            processing_class=processing_class,
            compute_metrics=compute_metrics or self._compute_eval_metrics,
            callbacks=callbacks,
            optimizers=optimizers,
            **kwargs,
        )
        self._train_metrics: dict[str, list[float]] = defaultdict(list)
        self.skipped_nonfinite_batches = 0
        if self.args.metric_for_best_model in ("headline", "eval_headline"):  # any family: its format's headline
            self.args.metric_for_best_model = f"eval_{self.headline_metric()}"
        self._record_metadata()

    # ----- hooks a loss family overrides -------------------------------------------------------------------------
    row_unit: str = "rows"

    @classmethod
    def num_labels(cls, args: RewardConfig) -> int:
        """Outputs of the reward head (1, or one per attribute for multi-attribute regression)."""
        return 1

    def headline_metric(self) -> str:
        """The evaluation metric a recipe prints first (without the `eval_` prefix): the format's headline."""
        return FORMATS[self.schema.name].headline

    def parse_options(self, args: RewardConfig) -> dict[str, Any]:
        """Keyword options passed to the family's `RowSchema.detect` and `parse` (each takes what it needs)."""
        return {"turn_markers": tuple(args.turn_markers)}

    def adapt_raw_dataset(self, dataset: Dataset, args: RewardConfig) -> Dataset:
        """Last chance to reshape a raw dataset before validation (e.g. drop a column the config ignores)."""
        return dataset

    def loss_settings(self) -> dict[str, Any]:
        """Family settings the loss reads besides its registered options, for the recorded loss description."""
        return {}

    def on_data_prepared(self, train_dataset: Dataset | None, args: RewardConfig) -> None:
        """Called once the data is tokenized, before the metadata is recorded (e.g. target statistics)."""

    def metrics(self, predictions: np.ndarray) -> dict[str, float]:
        """Metrics from the per-row predictions `compute_loss` returns (training logs and evaluation alike)."""
        return {}

    def loss_description(self) -> dict[str, Any]:
        """The loss and its settings, recorded in the exported config and model card."""
        args = self.args
        described: dict[str, Any] = {"type": args.loss_type, **self.loss_functions[args.loss_type].describe(args)}
        described.update(self.loss_settings())
        if self.centers_rewards and args.center_rewards_coefficient:
            described["center_rewards_coefficient"] = args.center_rewards_coefficient
        return described

    def family_loss(self, rewards: torch.Tensor, *inputs: Any, **options: Any) -> torch.Tensor:
        """The configured `loss_type` of the family's registry on `inputs`, plus the reward-centering penalty on
        `rewards` when `center_rewards_coefficient` is set."""
        spec = self.loss_functions[self.args.loss_type]
        loss = spec.fn(*inputs, **options, **spec.settings(self.args))
        if self.centers_rewards and self.args.center_rewards_coefficient:
            loss = loss + self.args.center_rewards_coefficient * reward_centering_penalty(rewards)
        return loss

    # ----- shared machinery ---------------------------------------------------------------------------------------
    def _prepare(self, dataset: Dataset | None, split: str, tokenizer, args: RewardConfig) -> Dataset | None:
        if dataset is None:
            return None
        if is_prepared(dataset):
            return dataset
        dataset = self.adapt_raw_dataset(dataset, args)
        with args.main_process_first(desc=f"preparing {split} data"):
            prepared = prepare_dataset(
                dataset,
                self.schema,
                tokenizer,
                split=split,
                max_length=args.max_length,
                truncation=args.truncation,
                invalid_rows=args.invalid_rows,
                append_eos=args.append_eos,
                num_proc=args.dataset_num_proc,
                parse_options=self.parse_options(args),
                duplicate_rows=args.duplicate_rows,
                conflicting_rows=args.conflicting_rows,
            )
        self.prepared[split] = prepared
        self.data_reports[split] = prepared.report
        return prepared.dataset

    def _target_names(self) -> tuple[str, ...]:
        names = {p.target_names for p in self.prepared.values()}
        if len(names) > 1:
            raise ValueError(f"train and eval data carry different targets: {sorted(names)}")
        return names.pop() if names else ()

    def _set_signature_columns_if_needed(self):
        if self._signature_columns is None:
            self._signature_columns = [PROMPT_IDS, RESPONSE_IDS, REWARD_POSITIONS, ROW, LENGTH, *self.target_names]

    def get_train_dataloader(self):
        """With `batch_tokens`, batches are built under a token budget; otherwise the Trainer's own loader."""
        if self.args.batch_tokens is None:
            return super().get_train_dataloader()
        dataset = self._remove_unused_columns(self.train_dataset, description="training")
        sampler = TokenBudgetBatchSampler(dataset[LENGTH], self.args.batch_tokens, seed=self.args.seed)
        loader = torch.utils.data.DataLoader(
            dataset,
            batch_sampler=sampler,
            collate_fn=self.data_collator,
            num_workers=self.args.dataloader_num_workers,
            pin_memory=self.args.dataloader_pin_memory,
        )
        return self.accelerator.prepare(loader)

    def compute_rewards(self, model, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """One forward over every sequence of the batch; returns float32 rewards `[num_positions, num_labels]`, in
        row, response, position order (one position per response for outcome rewards).

        Padded and packed batches alike carry `reward_index`, the positions the data names
        (`rm_trl.reward_reading`); for outcome rewards that is the token the standard head pools (the last real
        token, which the data pipeline guarantees is not the pad token), so training equals a plain forward of
        the export.
        """
        rewards = self.read_rewards(model, inputs)
        if self.model.training and "token_counts" in inputs:
            real, padded = inputs["token_counts"].tolist()
            self._train_metrics["padding_fraction"].append(1.0 - real / max(padded, 1))
        return rewards.float()

    def track_batch_metrics(self, predictions: torch.Tensor) -> None:
        """Log the family's metrics for this training batch, gathered over processes."""
        if not self.model.training:
            return
        with torch.no_grad():
            predictions = self.accelerator.pad_across_processes(predictions.detach(), dim=1, pad_index=-1)
            gathered = self.accelerator.gather_for_metrics(predictions).float().cpu().numpy()
            for key, value in self.metrics(gathered).items():
                self._train_metrics[key].append(value)

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if self._train_metrics and "loss" in logs:
            logs.update({k: float(np.mean(v)) for k, v in self._train_metrics.items()})
            self._train_metrics.clear()
        if self.skipped_nonfinite_batches and "loss" in logs:
            logs["skipped_nonfinite_batches"] = self.skipped_nonfinite_batches
        super().log(logs, start_time)

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval") -> dict[str, float]:
        """Evaluate; a raw dataset passed here is validated and tokenized like the training data first."""
        if isinstance(eval_dataset, dict):
            eval_dataset = {
                k: self._prepare(v, f"{metric_key_prefix}_{k}", self.processing_class, self.args)
                for k, v in eval_dataset.items()
            }
        elif eval_dataset is not None:
            eval_dataset = self._prepare(eval_dataset, metric_key_prefix, self.processing_class, self.args)
        return super().evaluate(eval_dataset=eval_dataset, ignore_keys=ignore_keys, metric_key_prefix=metric_key_prefix)

    def _compute_eval_metrics(self, prediction: EvalPrediction) -> dict[str, float]:
        return self.metrics(prediction.predictions)

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        inputs = self._prepare_inputs(inputs)
        with torch.no_grad(), self.compute_loss_context_manager():
            loss, predictions = self.compute_loss(model, inputs, return_outputs=True)
        if prediction_loss_only:
            return loss.detach(), None, None
        return loss.detach(), predictions.detach(), inputs[ROW]
