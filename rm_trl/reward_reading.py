"""Reading rewards at the positions the data names: one code path for padded and packed batches.

Every tokenized row carries `reward_positions` (`rm_trl.data.tokenize`): per response, the token offsets where a
reward is read (today one, the response's last token; several for step rewards). Every collator turns them into
`reward_index`, flat positions into the batch's `[sequences, length]` token grid, in row order, then response
order, then position order. A reader returns `[len(reward_index), num_labels]` float rewards:

- `TokenRewardCapture` (decoders, whose `score` head scores every token before the model pools one): the
  per-token output is captured through a forward hook during the model's own forward (so DDP / FSDP wrapping and
  gradient synchronisation are untouched) and read at `reward_index`. For an outcome reward this is exactly the
  token the standard head pools (the last non-pad token), so training equals a plain forward of the export.
- `PooledRewardReader` (encoders: the head scores the pooled [CLS] state): one reward per sequence, so each
  sequence must have exactly one position, at its end; anything else (step rewards) is refused. Padding-free encoder
  rows (`rm_trl.encoder_packing`) are read at each sequence's first token.
"""

from __future__ import annotations

import logging

import torch

from .encoder_packing import read_first_tokens, unwrapped

logger = logging.getLogger(__name__)


def padding_token_id(model, tokenizer) -> int:
    """The id a padded batch pads with: the one the model's own pooling skips (a decoder's head reads the last token
    that is not `config.pad_token_id`). A hand-built pair whose tokenizer pads with another id would read a short
    row's reward at a pad token, so the model's id wins (said in the log); a model without one is given the
    tokenizer's."""
    pad = tokenizer.pad_token_id
    config = unwrapped(model).config
    if not has_token_head(model):
        return pad
    if config.pad_token_id is None:
        config.pad_token_id = pad
    elif config.pad_token_id != pad:
        logger.warning(
            "the model's config pads with id %s, its tokenizer with id %s: padding with %s, which the model's "
            "pooling skips",
            config.pad_token_id,
            pad,
            config.pad_token_id,
        )
    return config.pad_token_id


def has_token_head(model) -> bool:
    """Whether the model's head scores every token (`score` of the `*ForSequenceClassification` decoders)."""
    base = unwrapped(model)
    return hasattr(base, "score") and not getattr(base.config, "is_encoder_decoder", False)


class TokenRewardCapture:
    """Per-token head output, read at `reward_index` (see the module docstring)."""

    def __init__(self, model):
        self.head = unwrapped(model).score

    def __call__(self, model, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        if "position_ids" not in inputs and one_reward_at_each_end(inputs):
            # Outcome rewards in a padded batch are the token the standard head pools: the model's own logits, which
            # also hold under nn.DataParallel, heads that score a pooled state, and a LoRA merged after set-up.
            return model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]).logits
        captured: list[torch.Tensor] = []
        handle = self.head.register_forward_hook(lambda module, args, output: captured.append(output))
        try:  # the hook lives for this call only: readers never pile up hooks on a shared model
            extra = {"position_ids": inputs["position_ids"]} if "position_ids" in inputs else {}
            model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"], **extra)
        finally:
            handle.remove()
        per_token = captured[-1] if captured else None  # [sequences, L, num_labels]
        if per_token is None or per_token.dim() != 3 or per_token.shape[:2] != inputs["input_ids"].shape:
            raise ValueError(
                "rewards at several positions per sequence (packed rows, step rewards) need the model's `score` head "
                "to score every token in this forward; it did not (a head on a pooled state, or the model changed "
                "after the reader was built)"
            )
        return per_token.reshape(-1, per_token.shape[-1])[inputs["reward_index"]]


def one_reward_at_each_end(inputs: dict[str, torch.Tensor]) -> bool:
    """Whether a padded batch asks for exactly one reward per sequence, at its last real token (outcome rewards;
    a batch from a collator that names no positions counts as such)."""
    index = inputs.get("reward_index")
    if index is None:
        return True
    sequences, length = inputs["input_ids"].shape
    mask = inputs["attention_mask"]
    if mask.dim() != 2 or index.shape[0] != sequences:
        return False
    last = mask.sum(dim=1) - 1 + torch.arange(sequences, device=mask.device) * length
    return torch.equal(index.to(last.device), last)


class PooledRewardReader:
    """The model's own pooled logits, one reward per sequence (encoders)."""

    def __call__(self, model, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        if "segment_starts" in inputs:
            return read_first_tokens(model, inputs)
        if "position_ids" in inputs:
            raise ValueError("packed batches need a model whose head scores every token (a decoder)")
        if not one_reward_at_each_end(inputs):
            raise ValueError(
                "this model pools one state per sequence (e.g. BERT's [CLS]): it reads one reward per sequence, at "
                "its end; rewards at other positions (step rewards) need a decoder whose head scores every token"
            )
        return model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]).logits


def reward_reader(model) -> TokenRewardCapture | PooledRewardReader:
    """The reader for `model`: per-token capture for decoders, pooled logits otherwise."""
    return TokenRewardCapture(model) if has_token_head(model) else PooledRewardReader()
