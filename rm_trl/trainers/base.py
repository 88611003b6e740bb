"""`RewardTrainer`: the `transformers.Trainer` plumbing every reward-model loss family shares.

A loss family subclasses it and sets three things: its config class, its `RowSchema` (data format), and
`compute_loss` (rewards -> loss, via a pure function from `rm_trl.losses`). Everything else lives here once:
model/tokenizer set-up (pad token, LoRA, dropout), data preparation with its report, the single forward over all
sequences of a batch, training-metric logging, evaluation predictions, and the portable export.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
from collections import defaultdict
from typing import Any

import numpy as np
import torch
from accelerate.utils import is_peft_model
from datasets import Dataset
from transformers import PreTrainedModel, Trainer, set_seed
from transformers.trainer_utils import EvalPrediction

from ..checkpoints import SafeCheckpointsMixin
from ..config import RewardConfig
from ..data.collators import RewardDataCollator
from ..data.formats import RowSchema
from ..data.pipeline import LENGTH, PROMPT_IDS, RESPONSE_IDS, ROW, PreparedData, is_prepared, prepare_dataset
from ..data.report import DataReport, DataValidationError, save_reports
from ..errors import ConfigError, TrainingError
from ..export import (
    METADATA_KEY,
    bake_normalization,
    check_tokenizer_roundtrip,
    consumer_flags,
    library_versions,
    reward_token_rule,
    save_metrics,
    write_model_card,
)
from ..hub import default_repo_id, push_export
from ..modeling import (
    apply_lora,
    fit_max_length_to_model,
    keep_head_in_float32,
    load_reward_model,
    load_tokenizer,
    setup_pad_token,
)
from ..packing import (
    PackedRewardDataCollator,
    TokenBudgetBatchSampler,
    TokenRewardCapture,
    attention_implementation,
    packing_support,
)

logger = logging.getLogger(__name__)


class RewardTrainer(SafeCheckpointsMixin, Trainer):
    """Base class of the loss-family trainers; not used directly.

    Args:
        model: a Hub id / local path (loaded with `rm_trl.load_reward_model`) or a sequence-classification model.
        args: the family's config (a `RewardConfig` subclass).
        train_dataset / eval_dataset: raw datasets in one of the family's formats (validated, parsed and tokenized
            here; see `rm_trl.data`), or datasets already prepared by `rm_trl.data.prepare_dataset`.
        processing_class: the tokenizer; loaded from the model when omitted.
        peft_config: a `peft.LoraConfig` to train a LoRA adapter (the reward head is always trained and saved).
    """

    config_class: type[RewardConfig] = RewardConfig
    schema: RowSchema
    family: str = "base"
    loss_is_scaled_for_ga = False  # losses are means over the batch; Trainer divides by the accumulation steps

    def __init_subclass__(cls, **kwargs):
        """Every family's `compute_loss` gets the non-finite-loss guard (see `nonfinite_loss`)."""
        super().__init_subclass__(**kwargs)
        if "compute_loss" in cls.__dict__:
            cls.compute_loss = _guard_nonfinite_loss(cls.__dict__["compute_loss"])

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
            _set_cpu_threads(args.cpu_threads)
        if isinstance(model, str):
            set_seed(args.seed)  # the reward head is initialised at load time
            model, loaded_tokenizer = load_reward_model(
                model, num_labels=self.num_labels(args), pad_token=args.pad_token
            )
            processing_class = processing_class or loaded_tokenizer
        elif processing_class is None:
            processing_class = load_tokenizer(model.config._name_or_path)
        if model.config.num_labels != self.num_labels(args):
            raise ValueError(
                f"the model has num_labels={model.config.num_labels}; the {self.family} family needs "
                f"{self.num_labels(args)}. Load it with rm_trl.load_reward_model(..., num_labels=...)."
            )
        setup_pad_token(model, processing_class, args.pad_token)  # idempotent; needed for models passed in
        fit_max_length_to_model(model, args)  # refuse at start what would crash mid-training
        if hasattr(model.config, "use_cache"):
            model.config.use_cache = False
        if peft_config is not None:
            model = apply_lora(model, peft_config)
            if args.gradient_checkpointing:
                model.enable_input_require_grads()
        if args.disable_dropout:
            _disable_dropout(model)
        keep_head_in_float32(model)

        self.data_reports: dict[str, DataReport] = {}
        self.prepared: dict[str, PreparedData] = {}
        train_dataset = self._prepare(train_dataset, "train", processing_class, args)
        if isinstance(eval_dataset, dict):
            eval_dataset = {k: self._prepare(v, f"eval_{k}", processing_class, args) for k, v in eval_dataset.items()}
        else:
            eval_dataset = self._prepare(eval_dataset, "eval", processing_class, args)
        if train_dataset is not None and isinstance(eval_dataset, Dataset) and "eval" in self.data_reports:
            eval_dataset = self._check_overlap(train_dataset, eval_dataset, args.eval_overlap)
        self.target_names = self._target_names()
        self.token_rewards: TokenRewardCapture | None = None
        if data_collator is None:
            data_collator = self._default_collator(model, processing_class, args)
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
        self._record_metadata()

    # ----- hooks a loss family overrides -------------------------------------------------------------------------
    row_unit: str = "rows"

    @classmethod
    def num_labels(cls, args: RewardConfig) -> int:
        """Outputs of the reward head (1, or one per attribute for multi-attribute regression)."""
        return 1

    def headline_metric(self) -> str:
        """The evaluation metric a recipe prints first (without the `eval_` prefix)."""
        return "accuracy"

    def parse_options(self, args: RewardConfig) -> dict[str, Any]:
        """Keyword options passed to the family's `RowSchema.detect` and `parse` (each takes what it needs)."""
        return {"turn_markers": tuple(args.turn_markers)}

    def adapt_raw_dataset(self, dataset: Dataset, args: RewardConfig) -> Dataset:
        """Last chance to reshape a raw dataset before validation (e.g. drop a column the config ignores)."""
        return dataset

    def loss_description(self) -> dict[str, Any]:
        """The loss and its settings, recorded in the exported config and model card."""
        return {}

    def metrics(self, predictions: np.ndarray) -> dict[str, float]:
        """Metrics from the per-row predictions `compute_loss` returns (training logs and evaluation alike)."""
        return {}

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

    def _default_collator(self, model, tokenizer, args: RewardConfig):
        """Packed sequences for decoders that support them, plain padded batches otherwise (said in the log)."""
        if args.packing:
            supported, reason = packing_support(model)
            if supported:
                self.token_rewards = TokenRewardCapture(model)
                logger.info(
                    "Packing: each prompt encoded once for its responses (%s attention)",
                    attention_implementation(model),
                )
                return PackedRewardDataCollator(
                    pad_token_id=tokenizer.pad_token_id,
                    target_names=self.target_names,
                    max_row_tokens=args.pack_rows_tokens,
                    pad_to_multiple_of=args.pad_to_multiple_of,
                    boolean_mask=attention_implementation(model) == "sdpa",
                )
            logger.warning("Packing off, plain padded batches: %s", reason)
        return RewardDataCollator(
            pad_token_id=tokenizer.pad_token_id,
            target_names=self.target_names,
            pad_to_multiple_of=args.pad_to_multiple_of,
        )

    def _check_overlap(self, train: Dataset, evaluation: Dataset, policy: str) -> Dataset:
        """Count evaluation rows that also appear, token for token, in the training data; apply `eval_overlap`."""

        def keys(data: Dataset) -> list[tuple]:
            return [(tuple(p), tuple(sorted(map(tuple, rs)))) for p, rs in zip(data[PROMPT_IDS], data[RESPONSE_IDS])]

        train_keys = set(keys(train))
        train_prompts = {k[0] for k in train_keys}
        eval_keys = keys(evaluation)
        overlap = [row for row, key in zip(evaluation[ROW], eval_keys) if key in train_keys]
        shared_prompts = sum(key[0] in train_prompts for key in eval_keys)
        report = self.data_reports["eval"]
        report.settings["overlap_with_train"] = {"rows": len(overlap), "prompts": shared_prompts}
        if not overlap:
            return evaluation
        message = f"{len(overlap)} evaluation rows also appear in the training data (e.g. rows {overlap[:10]})"
        if policy == "error":
            raise DataValidationError(message + "; set `eval_overlap: warn` or `drop`")
        report.note_rows("overlap_with_train", overlap)
        if policy == "drop":
            report.dropped["overlap_with_train"] += len(overlap)
            drop = set(overlap)
            evaluation = evaluation.filter(lambda row: row not in drop, input_columns=ROW)
            report.rows_out = len(evaluation)
            self.prepared["eval"] = dataclasses.replace(self.prepared["eval"], dataset=evaluation)
        else:
            report.flagged["overlap_with_train"] += len(overlap)
        logger.warning("%s: %s", message, "dropped from evaluation" if policy == "drop" else "kept")
        return evaluation

    def _target_names(self) -> tuple[str, ...]:
        names = {p.target_names for p in self.prepared.values()}
        if len(names) > 1:
            raise ValueError(f"train and eval data carry different targets: {sorted(names)}")
        return names.pop() if names else ()

    def _set_signature_columns_if_needed(self):
        if self._signature_columns is None:
            self._signature_columns = [PROMPT_IDS, RESPONSE_IDS, ROW, LENGTH, *self.target_names]

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
        """One forward over every sequence of the batch; returns float32 rewards `[num_responses, num_labels]`.

        Plain batches: the standard head reads each sequence at the last token that is not the pad token, which
        the data pipeline guarantees is the last real token, so training scores equal a plain forward of the
        export. Packed batches: the head's per-token output is read at each response's last token.
        """
        if "reward_index" in inputs:
            rewards = self.token_rewards(model, inputs)
        else:
            rewards = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]).logits
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

    # ----- export -------------------------------------------------------------------------------------------------
    def _record_metadata(self) -> None:
        base = self.accelerator.unwrap_model(self.model)
        model = base.get_base_model() if is_peft_model(base) else base
        prepared = self.prepared.get("train") or next(iter(self.prepared.values()), None)
        tokenizer = self.processing_class
        metadata = {
            "version": library_versions().get("rm-trl", "0+unknown"),
            "libraries": library_versions(),
            "family": self.family,
            "loss": self.loss_description(),
            "num_labels": model.config.num_labels,
            "base_model": model.config._name_or_path,
            "reward_token": reward_token_rule(model),
            "pad_token": tokenizer.pad_token,
            "padding_side": "right",
            "max_length": self.args.max_length,
            "truncation": self.args.truncation,
        }
        if self.args.license:
            metadata["license"] = self.args.license
        if prepared is not None:
            metadata["format"] = prepared.layout.describe()
            metadata["append_eos"] = tokenizer.eos_token_id is not None and (
                tokenizer.eos_token_id in prepared.template.suffix
            )
            metadata["conversational"] = prepared.layout.conversational
            prefix, suffix = list(prepared.template.prefix), list(prepared.template.suffix)
            metadata["special_tokens"] = {
                "prefix": tokenizer.convert_ids_to_tokens(prefix),
                "suffix": tokenizer.convert_ids_to_tokens(suffix),
            }
            # TRL's online trainers score `tokenizer(prompt + completion, add_special_tokens=False)` and append
            # nothing: the same ids as training only when training added no special tokens of its own.
            metadata["trl_path_compatible"] = not prefix and not suffix
        setattr(model.config, METADATA_KEY, metadata)

    def reward_metadata(self) -> dict[str, Any]:
        model = self.accelerator.unwrap_model(self.model)
        model = model.get_base_model() if is_peft_model(model) else model
        return dict(getattr(model.config, METADATA_KEY, {}) or {})

    def export_transform(self, model: PreTrainedModel, output_dir: str) -> PreTrainedModel:
        """Family hook, run on the main process after training: return the model the main export should hold
        (e.g. attribute heads folded into one reward). The default keeps `model` as it is."""
        return model

    def save_reward_model(
        self,
        output_dir: str | None = None,
        metrics: dict[str, float] | None = None,
        datasets: list[str] | None = None,
    ) -> str:
        """Save the portable export: a plain sequence-classification model + tokenizer + model card + data report.

        With LoRA, the adapter goes to `<output_dir>/adapter` and (if `export_merged`) the merged model to
        `output_dir`; merging happens in place, so train no further with this trainer afterwards.
        """
        output_dir = output_dir or self.args.output_dir
        model = self.accelerator.unwrap_model(self.model)
        peft = is_peft_model(model)
        metadata = self.reward_metadata()
        metadata["data"] = {name: report.summary() for name, report in self.data_reports.items()}
        if datasets:
            metadata["datasets"] = list(datasets)
        setattr((model.get_base_model() if peft else model).config, METADATA_KEY, metadata)
        self.save_model(os.path.join(output_dir, "adapter") if peft else output_dir)  # all ranks: sharded states
        export_main = not peft or self.args.export_merged
        if export_main and self.args.should_save:
            final = model.merge_and_unload() if peft else model
            exported = self.export_transform(final, output_dir)
            if self.args.normalize_rewards:
                exported, metadata["normalization"] = self._normalize_export(exported)
            metadata["consumers"] = consumer_flags(metadata)  # after normalisation: baked or stored changes them
            setattr(exported.config, METADATA_KEY, metadata)
            if peft or exported is not final:
                exported.save_pretrained(output_dir)
                self.processing_class.save_pretrained(output_dir)
            else:  # the Trainer saved these weights already; only the metadata may have grown (normalisation)
                exported.config.save_pretrained(output_dir)
        if self.args.should_save:
            for folder in (output_dir, os.path.join(output_dir, "adapter")):  # pickled settings stay in checkpoints
                if os.path.isfile(os.path.join(folder, "training_args.bin")):
                    os.remove(os.path.join(folder, "training_args.bin"))
            save_reports(self.data_reports, os.path.join(output_dir, "data_report.json"))
            if metrics:
                save_metrics(output_dir, metrics)
            write_model_card(output_dir, metadata, metrics, model_ref=self.args.hub_model_id)
            if export_main:
                check_tokenizer_roundtrip(output_dir, self.processing_class)
        self.accelerator.wait_for_everyone()
        return output_dir

    def _normalize_export(self, model: PreTrainedModel) -> tuple[PreTrainedModel, dict[str, Any]]:
        """Measure the exported model's reward mean / std and bake them into its head (or record them)."""
        from ..scoring import RewardScorer

        split = "eval" if "eval" in self.prepared else "train"
        prepared = self.prepared[split]
        if split == "train" and len(prepared.dataset) > 2000:
            prepared = dataclasses.replace(prepared, dataset=prepared.dataset.select(range(2000)))
        was_training = model.training
        rewards = np.concatenate(RewardScorer(model, self.processing_class).score_prepared(prepared).scalar_rewards())
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

    def push_to_hub(self, commit_message: str | None = None, blocking: bool = True, token: str | None = None, **kwargs):
        """Upload the finished export folder to `hub_model_id` in one commit (see `rm_trl.hub`); the export is
        saved first if `save_reward_model` has not run. Returns the commit URL on the main process."""
        output_dir = self.args.output_dir
        if not os.path.isfile(os.path.join(output_dir, "data_report.json")):
            self.save_reward_model(output_dir)
        if not self.is_world_process_zero():
            return None
        repo_id = default_repo_id(output_dir, self.args.hub_model_id)
        try:
            return push_export(
                output_dir,
                repo_id,
                token=token or self.args.hub_token,
                private=self.args.hub_private_repo,
                revision=kwargs.get("revision") or self.args.hub_revision,
                commit_message=commit_message or f"rm-trl {self.family} reward model",
            )
        except Exception as exc:  # network, token, permissions: the export itself is complete and stays
            raise TrainingError(
                f"push to the Hub ({repo_id}) failed: {type(exc).__name__}: {exc}. The export is complete in "
                f'{os.path.abspath(output_dir)}; upload it later with `python -c "from rm_trl.hub import '
                f"push_export; push_export('{output_dir}', '{repo_id}')\"`"
            ) from exc

    def create_model_card(self, *args, **kwargs) -> None:
        """The Trainer's generic card would replace rm-trl's (written with metrics by `save_reward_model`)."""
        if self.args.should_save and not os.path.isfile(os.path.join(self.args.output_dir, "README.md")):
            write_model_card(self.args.output_dir, self.reward_metadata(), model_ref=self.args.hub_model_id)


def _guard_nonfinite_loss(compute_loss):
    @functools.wraps(compute_loss)
    def guarded(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        result = compute_loss(self, model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch)
        if not model.training:
            return result
        loss = result[0] if return_outputs else result
        finite = torch.isfinite(loss.detach()).float()
        if self.accelerator.num_processes > 1:  # every process must take the same decision
            finite = self.accelerator.gather(finite.reshape(1)).min()
        if finite.item() == 1.0:
            return result
        step, rows = self.state.global_step + 1, inputs["row"].tolist()
        if self.args.nonfinite_loss == "error":
            raise FloatingPointError(
                f"non-finite training loss at step {step} on this process's batch of rows {rows[:32]} "
                f"(loss {loss.item()}); check those rows and the learning rate / precision, or set "
                "`nonfinite_loss: skip` to skip such batches (they are counted)"
            )
        self.skipped_nonfinite_batches += 1
        logger.warning("Skipped a batch with a non-finite loss at step %d (rows %s)", step, rows[:32])
        # A zero that reaches every trainable parameter: no update from this batch, and data-parallel gradient
        # synchronisation still sees a backward pass on every process.
        zero = sum((p * 0).sum() for p in model.parameters() if p.requires_grad)
        return (zero, result[1]) if return_outputs else zero

    return guarded


def _set_cpu_threads(requested: int | None) -> None:
    """Use the cores this process may run on, shared among the processes of this machine."""
    if requested is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        local_processes = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
        requested = max(1, cores // max(1, local_processes))
    if torch.get_num_threads() != requested:
        logger.info("Using %d torch threads per process on CPU (was %d)", requested, torch.get_num_threads())
        torch.set_num_threads(requested)


def _disable_dropout(model: torch.nn.Module) -> None:
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
