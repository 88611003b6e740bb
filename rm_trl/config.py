"""Configuration dataclasses: one per loss family, all on top of `transformers.TrainingArguments`.

The shape follows TRL's `RewardConfig`: every field is documented where it is declared, so
`HfArgumentParser`/`TrlParser` turn it into a CLI flag with a useful `--help`, and a YAML recipe config can
set any of them by name.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass, field

from transformers import TrainingArguments

from .config_robust import EnsembleSettings, LengthHeadSettings
from .data.arguments import check_choices
from .data.formats.pairwise import DEFAULT_TURN_MARKERS
from .losses import (
    CONTRASTIVE_LOSS_FUNCTIONS,
    LISTWISE_LOSS_FUNCTIONS,
    PAIRWISE_LOSS_FUNCTIONS,
    POINTWISE_LOSS_FUNCTIONS,
)

TRUNCATION_POLICIES = ("truncate_prompt", "keep_start", "drop", "error")
INVALID_ROW_POLICIES = ("error", "skip")

_TRANSFORMERS_FIELDS = frozenset(f.name for f in dataclasses.fields(TrainingArguments))


@dataclass
class RewardConfig(TrainingArguments):
    r"""Settings shared by every reward-model loss family.

    Only the fields specific to reward modelling are listed here; everything else (batch size, learning rate,
    schedule, checkpointing, logging, `push_to_hub`, ...) is a `transformers.TrainingArguments` field.

    Parameters:
        > Data preprocessing

        max_length (`int` or `None`, defaults to `1024`):
            Longest tokenized sequence (prompt + one response, special tokens included). Longer rows are handled by
            `truncation`; nothing is dropped silently. `None` disables the limit.
        truncation (`str`, defaults to `"truncate_prompt"`):
            What to do with a row whose prompt + response does not fit in `max_length`:
            `"truncate_prompt"` keeps every response whole and cuts the prompt from the left (the oldest turns go
            first; the prompt stays identical across a row's responses); a response that alone does not fit is cut
            at its end. `"keep_start"` keeps the start of each sequence and cuts the end. `"drop"` drops the row.
            `"error"` raises. Every touched row is counted in the data report, and a row whose responses become
            identical after truncation is never trained on (counted as `identical_after_truncation`).
        invalid_rows (`str`, defaults to `"error"`):
            `"error"` stops at the first invalid rows with a message naming each row and field; `"skip"` drops them
            and logs how many were skipped and why.
        duplicate_rows (`str`, defaults to `"keep"`):
            Rows repeating an earlier row (same prompt, responses and label): `"keep"` (counted as flagged) or
            `"drop"` (the first one stays).
        conflicting_rows (`str`, defaults to `"keep"`):
            Rows giving the same prompt and responses different labels (A > B and B > A; two scores for one
            response), e.g. several annotators who disagree: `"keep"` (counted), `"drop"` (all of them) or
            `"error"`.
        eval_overlap (`str`, defaults to `"warn"`):
            Evaluation rows whose prompt and responses also appear in the training data: `"warn"` (counted in the
            eval report), `"drop"` (removed from evaluation, counted) or `"error"`.
        append_eos (`bool` or `None`, defaults to `None`):
            Append the tokenizer's EOS token to every plain-text response. `None` means automatic: yes for decoders
            whose tokenizer has an EOS token and does not add one itself, no for encoders (which end with `[SEP]`)
            and for conversational data (the chat template closes the turn).
        pad_token (`str` or `None`, defaults to `None`):
            Padding token to use. By default rm-trl keeps the tokenizer's pad token when it differs from EOS,
            otherwise picks an unused special pad-like token or adds a dedicated `<|pad|>` token, so that the standard
            sequence-classification head reads the reward at the last real token.
        turn_markers (`list[str]`):
            For implicit-prompt data (`chosen`/`rejected` hold whole transcripts), the prompt is the shared prefix cut
            just after the last of these markers it contains (for example `"\n\nAssistant:"` in hh-rlhf).
        dataset_num_proc (`int` or `None`, defaults to `None`):
            Processes used to validate and tokenize datasets.
        pad_to_multiple_of (`int` or `None`, defaults to `None`):
            Pad each batch to a multiple of this length.

        > Model

        nonfinite_loss (`str`, defaults to `"error"`):
            A NaN or infinite training loss stops training with a message naming the step and the batch's rows
            (`"error"`), or the batch is skipped and counted (`"skip"`: its gradient is zero on every process).
        trust_remote_code (`bool`, defaults to `False`):
            Allow checkpoints that ship custom Python code. Off by default: loading a model should not run code.
        disable_dropout (`bool`, defaults to `True`):
            Disable dropout: a reward model's scores should not be noisy during training or scoring.
        center_rewards_coefficient (`float` or `None`, defaults to `None`):
            Weight of the reward-centering penalty `mean(r^2)` (Eisenstein et al. 2023) that keeps rewards near zero
            for losses that only see reward differences. `0.01` is a common value.
        normalize_rewards (`bool`, defaults to `False`):
            At export, measure the mean and std of the model's rewards on the evaluation data (or up to 2000
            training rows) and normalise: baked into the head when its last layer has a bias (encoders), so every
            consumer reads `(r - mean) / std`; stored in the config otherwise (decoder `score` heads have no bias),
            where rm-trl's scorer, CLI and server apply it with `normalize`. The model card says which.
        calibrate_temperature (`bool`, defaults to `False`):
            At export, fit a temperature `T` for `P(a > b) = sigmoid((r_a - r_b) / T)` on the eval split's preference
            pairs and store it (`rm_trl.calibration`, the card); rewards are unchanged (`docs/calibration.md`).
        license (`str` or `None`, defaults to `None`):
            License written in the exported model card's metadata (e.g. `"apache-2.0"`); check the base model's and
            the data's licenses. `None` leaves it out.
        export_merged (`bool`, defaults to `True`):
            When training with LoRA, `save_reward_model` also merges the adapter into the base weights and saves a
            plain sequence-classification model (loadable anywhere); the adapter goes to `<output_dir>/adapter`.
        > Throughput

        packing (`bool`, defaults to `True`):
            For decoders, encode each prompt once for all its responses: one packed sequence per row, with an
            attention mask that keeps responses apart (rewards equal separate forwards). For encoders (BERT,
            RoBERTa, XLM-R, CamemBERT, ELECTRA), padding-free batches: all sequences of a batch in one row, each
            attending to itself only, the head read at each [CLS] (`rm_trl.encoder_packing`). Other models, and
            attention implementations that cannot take a custom 4D mask, fall back to plain padded batches (logged).
        pack_rows_tokens (`int` or `None`, defaults to `None`):
            Decoders, with `packing`: also pack several rows into one sequence of up to this many tokens
            (padding-free). Encoders are always padding-free with `packing`.
        batch_tokens (`int` or `None`, defaults to `None`):
            Token-budget batches instead of a fixed number of rows: each training batch holds as many rows of
            similar length as fit in this many padded tokens (`per_device_train_batch_size` is then ignored).
        train_sampling_strategy (`str`, defaults to `"group_by_length"`):
            Transformers' length-grouped sampling: shuffle, then sort by length within large windows, so batches
            hold rows of similar length (little padding) while the order stays random.
        cpu_threads (`int` or `None`, defaults to `None`):
            Torch threads per process when training on CPU. `accelerate launch` without a CPU config exports
            `OMP_NUM_THREADS=1`, which halves speed on a 2-core machine; by default rm-trl uses every core available
            to the process divided by the number of processes on this machine.

        > Device and precision

        When no GPU (CUDA, XPU or MPS) is present, `use_cpu` is switched on, so that a multi-process launch runs
        data parallel over gloo instead of silently starting independent single-process runs. `bf16` / `fp16` are
        the Trainer's autocast switches: on GPU they work as usual; on CPU fp16 is refused and bf16 warns (slow
        without AMX). Whatever the precision, the reward head and the losses run in float32.
    """

    # Data preprocessing
    max_length: int | None = field(
        default=1024,
        metadata={"help": "Longest tokenized sequence (prompt + one response). `None` disables the limit."},
    )
    truncation: str = field(
        default="truncate_prompt",
        metadata={
            "help": "Over-length policy: truncate_prompt (keep responses, cut the prompt from the left), "
            "keep_start (cut the end), drop (drop the row), error.",
            "choices": list(TRUNCATION_POLICIES),
        },
    )
    invalid_rows: str = field(
        default="error",
        metadata={
            "help": "error: stop on invalid rows; skip: drop them and log counts.",
            "choices": list(INVALID_ROW_POLICIES),
        },
    )
    duplicate_rows: str = field(
        default="keep", metadata={"help": "Repeated rows: keep (counted) or drop.", "choices": ["keep", "drop"]}
    )
    conflicting_rows: str = field(
        default="keep",
        metadata={
            "help": "Rows contradicting each other: keep (counted), drop or error.",
            "choices": ["keep", "drop", "error"],
        },
    )
    eval_overlap: str = field(
        default="warn",
        metadata={
            "help": "Eval rows also in the training data: warn, drop or error.",
            "choices": ["warn", "drop", "error"],
        },
    )
    append_eos: bool | None = field(
        default=None,
        metadata={"help": "Append EOS to plain-text responses (default: automatic, see docs)."},
    )
    pad_token: str | None = field(
        default=None,
        metadata={"help": "Padding token; by default a token distinct from EOS is chosen or added."},
    )
    turn_markers: list[str] = field(
        default_factory=lambda: list(DEFAULT_TURN_MARKERS),
        metadata={"help": "Markers that end the prompt in implicit-prompt transcripts."},
    )
    dataset_num_proc: int | None = field(
        default=None, metadata={"help": "Processes used to validate and tokenize datasets."}
    )
    pad_to_multiple_of: int | None = field(
        default=None, metadata={"help": "Pad each batch to a multiple of this length."}
    )
    # Model
    nonfinite_loss: str = field(
        default="error", metadata={"help": "NaN/inf loss: error or skip (counted).", "choices": ["error", "skip"]}
    )
    trust_remote_code: bool = field(
        default=False, metadata={"help": "Allow models and tokenizers that ship their own Python code."}
    )
    disable_dropout: bool = field(default=True, metadata={"help": "Disable dropout in the model."})
    center_rewards_coefficient: float | None = field(
        default=None, metadata={"help": "Weight of the reward-centering penalty mean(r^2); 0.01 is common."}
    )
    normalize_rewards: bool = field(
        default=False, metadata={"help": "Normalise exported rewards to mean 0, std 1 (baked or stored)."}
    )
    calibrate_temperature: bool = field(
        default=False, metadata={"help": "Fit a preference temperature on the eval split at export; rewards unchanged."}
    )
    license: str | None = field(default=None, metadata={"help": "License for the model card (e.g. apache-2.0)."})
    export_merged: bool = field(
        default=True, metadata={"help": "With LoRA, also save the merged model as the main export."}
    )
    packing: bool = field(default=True, metadata={"help": "Decoders: each prompt once; encoders: padding-free rows."})
    pack_rows_tokens: int | None = field(
        default=None, metadata={"help": "Also pack several rows per sequence, up to this many tokens."}
    )
    batch_tokens: int | None = field(
        default=None, metadata={"help": "Token-budget training batches of up to this many padded tokens."}
    )
    train_sampling_strategy: str = field(
        default="group_by_length", metadata={"help": "random, group_by_length (default) or batch_rebalance."}
    )
    cpu_threads: int | None = field(
        default=None,
        metadata={"help": "Torch threads per process on CPU (default: the cores available / local processes)."},
    )
    # TrainingArguments defaults that differ for reward models
    learning_rate: float = field(default=2e-5, metadata={"help": "The initial learning rate for AdamW."})
    logging_steps: float = field(default=10, metadata={"help": "Log every X update steps."})

    def __post_init__(self):
        check_choices(self, skip=_TRANSFORMERS_FIELDS)  # transformers checks its own
        if not math.isfinite(self.learning_rate) or self.learning_rate < 0:
            raise ValueError(f"learning_rate={self.learning_rate} must be a finite number >= 0")
        for name in ("per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)} must be at least 1")
        if self.max_length is not None and self.max_length < 8:
            raise ValueError(f"max_length={self.max_length} is too small to hold a prompt and a response")
        if not self.use_cpu and not _has_accelerator():
            self.use_cpu = True
        if self.gradient_checkpointing and self.gradient_checkpointing_kwargs is None:
            # Non-reentrant checkpointing works with LoRA (frozen inputs), custom 4D masks and DDP.
            self.gradient_checkpointing_kwargs = {"use_reentrant": False}
        if self.use_cpu and self.fp16:
            raise ValueError(
                "fp16 mixed precision needs a GPU; on CPU use fp32 (the default) or bf16 (fast only on CPUs with "
                "AMX / AVX512-BF16)"
            )
        if self.use_cpu and self.bf16:
            logging.getLogger(__name__).warning(
                "bf16 on CPU: correct, but on CPUs without AMX / AVX512-BF16 it is many times slower than fp32"
            )
        super().__post_init__()


def _has_accelerator() -> bool:
    import torch

    return torch.cuda.is_available() or torch.xpu.is_available() or torch.backends.mps.is_available()


PAIRWISE_LOSSES = tuple(PAIRWISE_LOSS_FUNCTIONS)


@dataclass
class PairwiseRewardConfig(RewardConfig, EnsembleSettings, LengthHeadSettings):
    r"""Settings of the pairwise (chosen vs rejected) family (plus `config_robust`: ensembles, ODIN length head).

    Parameters:
        loss_type (`str`, defaults to `"bradley_terry"`):
            `"bradley_terry"`: `-log sigmoid(r_c - r_r - m)` (InstructGPT, Llama 2 with a margin `m`).
            `"hinge"`: `max(0, hinge_margin + m - (r_c - r_r))`.
        use_margin (`bool`, defaults to `True`):
            Use the dataset's `margin` column (Llama 2's preference-strength margin) when there is one.
        margin_scale (`float`, defaults to `1.0`):
            Multiplies the margin column before it enters the loss.
        fixed_margin (`float`, defaults to `0.0`):
            A margin added to every pair (a constant-margin Bradley-Terry / hinge), on top of any margin column.
        label_smoothing (`float`, defaults to `0.0`):
            Conservative Bradley-Terry: the label is `1 - eps` for chosen, `eps` for rejected, which models annotator
            noise and keeps rewards from growing without bound.
        hinge_margin (`float`, defaults to `1.0`):
            Minimum reward gap asked of the hinge loss.
    """

    loss_type: str = field(
        default="bradley_terry",
        metadata={"help": "Pairwise loss.", "choices": list(PAIRWISE_LOSSES)},
    )
    use_margin: bool = field(default=True, metadata={"help": "Use the dataset's `margin` column if present."})
    margin_scale: float = field(default=1.0, metadata={"help": "Scale applied to the margin column."})
    fixed_margin: float = field(default=0.0, metadata={"help": "Margin added to every pair."})
    label_smoothing: float = field(default=0.0, metadata={"help": "Label smoothing epsilon for Bradley-Terry."})
    hinge_margin: float = field(default=1.0, metadata={"help": "Minimum reward gap for the hinge loss."})

    def __post_init__(self):
        if not 0.0 <= self.label_smoothing < 0.5:
            raise ValueError(f"label_smoothing={self.label_smoothing} must be in [0, 0.5)")
        super().__post_init__()
        self.check_ensemble()
        self.check_length_head()


POINTWISE_LOSSES = tuple(POINTWISE_LOSS_FUNCTIONS)


@dataclass
class PointwiseRewardConfig(RewardConfig):
    r"""Settings of the pointwise (rated) family: regress each response's score(s).

    Parameters:
        loss_type (`str`, defaults to `"mse"`):
            `"mse"`, `"huber"` (quadratic within `huber_delta`, linear beyond: robust to outlier ratings), or `"bce"`
            for binary 0/1 labels (the reward is the logit).
        huber_delta (`float`, defaults to `1.0`):
            Where the Huber loss turns linear, in the units of the (standardised) scores.
        score_columns (`list[str]`, defaults to `["score"]`):
            Target columns. Several columns train one output per attribute (HelpSteer style); a missing value
            (null / NaN) is masked out of the loss.
        attribute_weights (`list[float]` or `None`, defaults to `None`):
            How the attributes fold into the single reward a consumer reads: the export's head is the weighted sum
            of the attribute heads (exact, since the head is linear). `None` means equal weights `1/A`. The
            unfolded multi-attribute model is saved under `<output_dir>/attributes`.
        standardize_scores (`bool`, defaults to `True`):
            Train on `(score - mean) / std` with the mean and std of the training scores (per attribute); the
            statistics are stored in the export's `rm_trl` config entry to map rewards back to the score scale.
            Ignored for `bce`.
    """

    loss_type: str = field(default="mse", metadata={"help": "Pointwise loss.", "choices": list(POINTWISE_LOSSES)})
    huber_delta: float = field(default=1.0, metadata={"help": "Huber loss threshold (standardised units)."})
    score_columns: list[str] = field(default_factory=lambda: ["score"], metadata={"help": "Score column(s)."})
    attribute_weights: list[float] | None = field(
        default=None, metadata={"help": "Weights folding the attributes into one reward (default: equal)."}
    )
    standardize_scores: bool = field(default=True, metadata={"help": "Standardise scores with training statistics."})

    def __post_init__(self):
        if not self.score_columns:
            raise ValueError("score_columns must name at least one column")
        if self.attribute_weights is not None and len(self.attribute_weights) != len(self.score_columns):
            raise ValueError(
                f"attribute_weights has {len(self.attribute_weights)} values "
                f"for {len(self.score_columns)} score columns"
            )
        if self.huber_delta <= 0:
            raise ValueError("huber_delta must be > 0")
        super().__post_init__()


LISTWISE_LOSSES = tuple(LISTWISE_LOSS_FUNCTIONS)


@dataclass
class ListwiseRewardConfig(RewardConfig):
    r"""Settings of the listwise (ranked) family: K responses per prompt, each forwarded once.

    Parameters:
        loss_type (`str`, defaults to `"all_pairs"`):
            `"all_pairs"`: InstructGPT's K-wise loss, Bradley-Terry averaged over a prompt's untied pairs;
            `"plackett_luce"`: likelihood of the whole ranking (ties: Breslow's rule);
            `"best_of_n"`: softmax cross-entropy of the best response against the others (Ziegler et al. 2019).
    """

    loss_type: str = field(default="all_pairs", metadata={"help": "Listwise loss.", "choices": list(LISTWISE_LOSSES)})


CONTRASTIVE_LOSSES = tuple(CONTRASTIVE_LOSS_FUNCTIONS)


@dataclass
class ContrastiveRewardConfig(RewardConfig):
    r"""Settings of the contrastive family: a good response against bad ones (best vs worst, in-batch negatives).

    Parameters:
        loss_type (`str`, defaults to `"infonce"`):
            `"infonce"`: softmax of the chosen reward against its rejected one and (with `in_batch_negatives`) the
            batch's other rejected rewards; `"margin_ranking"`: `max(0, ranking_margin - (r_c - r_r))`.
        temperature (`float`, defaults to `1.0`):
            InfoNCE temperature: lower values focus the loss on the hardest negatives.
        in_batch_negatives (`bool`, defaults to `True`):
            Use the other rows' rejected responses as extra negatives.
        ranking_margin (`float`, defaults to `1.0`):
            Reward gap asked by the margin-ranking loss.
    """

    loss_type: str = field(
        default="infonce", metadata={"help": "Contrastive loss.", "choices": list(CONTRASTIVE_LOSSES)}
    )
    temperature: float = field(default=1.0, metadata={"help": "InfoNCE temperature."})
    in_batch_negatives: bool = field(default=True, metadata={"help": "Use other rows' rejected as negatives."})
    ranking_margin: float = field(default=1.0, metadata={"help": "Margin of the margin-ranking loss."})

    def __post_init__(self):
        if self.temperature <= 0:
            raise ValueError("temperature must be > 0")
        super().__post_init__()
