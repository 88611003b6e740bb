"""Model arguments: TRL's `ModelConfig` plus training a small model from scratch (as transformers' `run_clm.py`).

A reward model normally starts from a pretrained checkpoint (`model_name_or_path`). For synthetic tasks, unit-size
experiments and the offline process-reward demo, a few-million-parameter decoder trained from random weights can
learn more in minutes on a CPU than a pretrained model can be fine-tuned: `model_type` builds one from a config
(`config_overrides`, in `run_clm.py`'s "key=value,key=value" syntax) with the vocabulary of `tokenizer_name`.
The weights are seeded by the run's `seed`; the export is an ordinary checkpoint of that architecture.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from transformers import AutoConfig, AutoModelForSequenceClassification, PreTrainedModel
from trl import ModelConfig

from rm_trl.errors import ConfigError
from rm_trl.modeling import load_tokenizer, resolve_model_path, setup_pad_token


@dataclass
class RewardModelConfig(ModelConfig):
    """TRL's `ModelConfig` (every field kept) plus three fields for a model trained from scratch."""

    model_type: str | None = field(
        default=None,
        metadata={
            "help": "Train from scratch instead of from `model_name_or_path`: a transformers architecture name "
            "(e.g. 'llama'), built from its default config with `config_overrides`, random weights (seeded). "
            "Needs `tokenizer_name`."
        },
    )
    config_overrides: str | None = field(
        default=None,
        metadata={
            "help": "With `model_type`: config settings as 'key=value,key=value' (transformers' run_clm.py syntax), "
            "e.g. 'hidden_size=128,num_hidden_layers=2,num_attention_heads=4,intermediate_size=256'."
        },
    )
    tokenizer_name: str | None = field(
        default=None,
        metadata={"help": "With `model_type`: the tokenizer (a Hub id or folder) whose vocabulary the model gets."},
    )

    def __post_init__(self):
        super().__post_init__()
        if self.model_type is None:
            if self.config_overrides or self.tokenizer_name:
                raise ValueError("`config_overrides` and `tokenizer_name` only apply with `model_type` (from scratch)")
            return
        if self.model_name_or_path:
            raise ValueError(
                f"give either `model_name_or_path` ({self.model_name_or_path}) or `model_type` ({self.model_type}) "
                "for a model trained from scratch, not both"
            )
        if not self.tokenizer_name:
            raise ValueError(f"`model_type: {self.model_type}` (from scratch) needs `tokenizer_name`")
        if self.use_peft or self.load_in_4bit or self.load_in_8bit:
            raise ValueError("a model trained from scratch trains all its weights: no LoRA or quantisation")


def build_from_scratch(
    model_args: RewardModelConfig, *, num_labels: int, pad_token: str | None = None
) -> tuple[PreTrainedModel, object]:
    """A randomly initialised `*ForSequenceClassification` of `model_type` with `tokenizer_name`'s vocabulary.

    The caller seeds first (`set_seed`): the initial weights come from the global generator.
    """
    tokenizer_path = resolve_model_path(model_args.tokenizer_name)
    tokenizer = load_tokenizer(tokenizer_path)
    try:
        config = AutoConfig.for_model(model_args.model_type)
    except ValueError as exc:
        raise ConfigError(f"model_type {model_args.model_type!r} is not a transformers architecture") from exc
    if model_args.config_overrides:
        try:
            config.update_from_string(model_args.config_overrides)
        except ValueError as exc:
            raise ConfigError(f"config_overrides {model_args.config_overrides!r}: {exc}") from exc
    config.vocab_size = len(tokenizer)
    config.num_labels = num_labels
    for name in ("bos_token_id", "eos_token_id", "pad_token_id"):  # the tokenizer's ids, not the architecture's
        setattr(config, name, getattr(tokenizer, name, None))
    if model_args.attn_implementation is not None:
        config._attn_implementation = model_args.attn_implementation
    try:
        model = AutoModelForSequenceClassification.from_config(config)
    except ValueError as exc:
        raise ConfigError(f"model_type {model_args.model_type!r} has no sequence-classification head: {exc}") from exc
    model.config._name_or_path = f"{model_args.model_type} from scratch ({model_args.tokenizer_name} vocabulary)"
    if model_args.dtype not in (None, "auto", "float32"):
        import torch

        model = model.to(getattr(torch, model_args.dtype))
    setup_pad_token(model, tokenizer, pad_token)
    return model, tokenizer
