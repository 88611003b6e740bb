"""Padding-free batches for encoders: every sequence of a batch in one row, each attending to itself only.

An encoder reads its reward from the first token ([CLS]) after bidirectional attention over the whole sequence, so
a prompt cannot be shared between responses (its tokens attend to the response). What can go is padding: the
batch's sequences are laid end to end in one row, position ids restart at each sequence, and attention runs per
sequence (`segment_attention`: PyTorch's scaled-dot-product attention on each sequence's slice, given by
`cu_seq_lens_q`, the cumulative lengths transformers' flash-attention path also takes). Each sequence's hidden states
equal those of its own unpadded forward; the linear layers see real tokens only, and attention runs without a mask,
which on CPU takes PyTorch's fused kernel (a padded batch with a mask falls back to the math kernel).

The model's head is then applied at each sequence's first token: a forward pre-hook on the module that reads
position 0 (BERT's pooler, the classification head of RoBERTa, XLM-R, CamemBERT, ELECTRA) gathers those tokens into
a `[sequences, 1, hidden]` tensor, so the model's own pooler, dropout and classifier run unchanged (LoRA, DDP and
`modules_to_save` included) and the logits come out one per sequence, in batch order.

Token type ids stay at 0, as in rm-trl's padded batches and its export's scoring (`prompt + response` is one text).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from .data.collators import reward_offsets, row_fields
from .data.pipeline import PROMPT_IDS, RESPONSE_IDS

SEGMENT_ATTENTION = "rm_trl_segments"
# model_type -> (the module that reads the first token, relative to the model with the head; whether position ids
# start after the padding index, as RoBERTa's do). Each entry is checked by tests/test_encoder_packing.py.
FIRST_TOKEN_READERS: dict[str, tuple[str, bool]] = {
    "bert": ("base_model.pooler", False),
    "electra": ("classifier", False),
    "roberta": ("classifier", True),
    "xlm-roberta": ("classifier", True),
    "camembert": ("classifier", True),
}


def segment_attention(module, query, key, value, attention_mask, dropout: float = 0.0, scaling=None, **kwargs):
    """Attention within each sequence of a padding-free row (`cu_seq_lens_q`); plain sdpa for any other batch."""
    bounds = kwargs.get("cu_seq_lens_q")
    if bounds is None:
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout, scaling, **kwargs)
    bounds = bounds.tolist()
    if query.shape[0] != 1 or attention_mask is not None or bounds[0] != 0 or bounds[-1] != query.shape[2]:
        raise ValueError(
            "a padding-free batch is one row without an attention mask whose sequence bounds cover it exactly "
            "(nn.DataParallel splits them apart: use DDP, `accelerate launch` / torchrun)"
        )
    pieces = [
        F.scaled_dot_product_attention(
            query[:, :, start:end], key[:, :, start:end], value[:, :, start:end], dropout_p=dropout, scale=scaling
        )
        for start, end in zip(bounds[:-1], bounds[1:])
    ]
    return torch.cat(pieces, dim=2).transpose(1, 2).contiguous(), None


def register_segment_attention() -> None:
    """Make `SEGMENT_ATTENTION` a transformers attention implementation (idempotent). Its masks are sdpa's."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(SEGMENT_ATTENTION, segment_attention)
    AttentionMaskInterface.register(SEGMENT_ATTENTION, sdpa_mask)


def unwrapped(model):
    """The transformers model under PEFT and DDP wrappers."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return getattr(base, "module", base)


def segment_packing_support(model) -> tuple[bool, str]:
    """Whether `model` can train on padding-free encoder rows: a listed encoder (`FIRST_TOKEN_READERS`) whose
    attention goes through transformers' attention interface."""
    base = unwrapped(model)
    model_type = getattr(base.config, "model_type", None)
    if model_type not in FIRST_TOKEN_READERS:
        return (
            False,
            f"{model_type!r} is not an encoder listed for padding-free rows ({', '.join(FIRST_TOKEN_READERS)})",
        )
    if getattr(base.config, "is_decoder", False) or getattr(base.config, "is_encoder_decoder", False):
        return False, f"{model_type!r} is configured as a decoder"
    attention = base.config._attn_implementation
    if attention not in ("sdpa", SEGMENT_ATTENTION):
        return False, f"attention implementation {attention!r} was chosen (padding-free rows replace sdpa only)"
    if first_token_module(base) is None:
        return (
            False,
            f"{type(base).__name__} has no module reading the first token ({FIRST_TOKEN_READERS[model_type][0]})",
        )
    return True, "ok"


def first_token_module(model) -> torch.nn.Module | None:
    base = unwrapped(model)
    module = base
    for name in FIRST_TOKEN_READERS[base.config.model_type][0].split("."):
        module = getattr(module, name, None)
        if module is None:
            return None
    return module


def use_segment_attention(model) -> None:
    """Switch `model` (sdpa) to `SEGMENT_ATTENTION`: padding-free rows attend per sequence, other batches exactly as
    with sdpa. The switch stays (a backward that recomputes activations, under gradient checkpointing, needs it after
    the forward); transformers does not save it with the model, which reloads as sdpa."""
    register_segment_attention()
    unwrapped(model).set_attn_implementation(SEGMENT_ATTENTION)


def position_padding_index(model) -> int | None:
    """RoBERTa-style embeddings number positions after their padding index, skipping tokens equal to it (the index
    the embeddings were built with: a pad token set later changes the config, not the embeddings); None for
    positions counted from 0."""
    base = unwrapped(model)
    if not FIRST_TOKEN_READERS[base.config.model_type][1]:
        return None
    return int(base.base_model.embeddings.padding_idx)


def padding_free_collator(model, target_names: tuple[str, ...] = ()) -> tuple[SegmentPackedCollator | None, str]:
    """The padding-free collator for `model`, which is switched to `SEGMENT_ATTENTION`; or None and why not."""
    supported, reason = segment_packing_support(model)
    if not supported:
        return None, reason
    use_segment_attention(model)
    return SegmentPackedCollator(target_names=target_names, padding_index=position_padding_index(model)), reason


@dataclass
class SegmentPackedCollator:
    """Collates tokenized rows into one padding-free row of sequences (see the module docstring).

    Returns `input_ids` and `position_ids` `[1, tokens]`, `cu_seq_lens_q` / `cu_seq_lens_k` (int32, sequence
    boundaries), `segment_starts` (each sequence's first token), `reward_index` (each sequence's last token, the
    outcome position), `token_counts` (real tokens twice: there is no padding) and the row fields of
    `rm_trl.data.collators.row_fields`. Sequences are in row order, responses in order, as in a padded batch.
    """

    target_names: tuple[str, ...] = ()
    padding_index: int | None = None  # RoBERTa-style positions (`position_padding_index`); None: 0, 1, 2, ...

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        for ex in examples:
            if any(len(p) != 1 or p[0] != len(r) - 1 for p, r in zip(reward_offsets(ex), ex[RESPONSE_IDS])):
                raise ValueError(
                    "an encoder reads one reward per sequence, from its first token: rewards at other positions "
                    "(step rewards) need a decoder whose head scores every token"
                )
        sequences = [ex[PROMPT_IDS] + response for ex in examples for response in ex[RESPONSE_IDS]]
        if not all(sequences):
            raise ValueError("an empty sequence (no prompt and no response tokens) has no first token to read")
        lengths = torch.tensor([len(s) for s in sequences], dtype=torch.int32)
        bounds = torch.zeros(len(sequences) + 1, dtype=torch.int32)
        bounds[1:] = lengths.cumsum(0)
        starts = bounds[:-1].long()
        total = int(bounds[-1])
        input_ids = torch.tensor([t for s in sequences for t in s], dtype=torch.long)
        segment_of = torch.repeat_interleave(torch.arange(len(sequences)), lengths.long())
        if self.padding_index is None:
            positions = torch.arange(total) - starts[segment_of]
        else:  # RoBERTa: count the non-pad tokens of each sequence, after the padding index; pad tokens get it
            real = input_ids.ne(self.padding_index).long()
            counted = real.cumsum(0)
            before = torch.cat([torch.zeros(1, dtype=torch.long), counted])[starts][segment_of]
            positions = (counted - before) * real + self.padding_index
        return {
            "input_ids": input_ids[None],
            "position_ids": positions[None],
            "cu_seq_lens_q": bounds,
            "cu_seq_lens_k": bounds,
            "segment_starts": starts,
            "reward_index": bounds[1:].long() - 1,
            "token_counts": torch.tensor([total, total], dtype=torch.long),
            **row_fields(examples, self.target_names),
        }


def read_first_tokens(model, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    """The model's logits at each sequence of a padding-free row: `[sequences, num_labels]`."""
    if unwrapped(model).config._attn_implementation != SEGMENT_ATTENTION:
        raise ValueError(
            "a padding-free encoder batch needs the model switched to per-sequence attention "
            "(`rm_trl.encoder_packing.use_segment_attention`); otherwise its sequences would attend to each other"
        )
    starts = inputs["segment_starts"]

    def gather_first_tokens(module, args):
        hidden = args[0]
        return (hidden.reshape(-1, hidden.shape[-1])[starts].unsqueeze(1), *args[1:])

    handle = first_token_module(model).register_forward_pre_hook(gather_first_tokens)
    try:  # the hook lives for this call only
        logits = model(
            input_ids=inputs["input_ids"],
            position_ids=inputs["position_ids"],
            cu_seq_lens_q=inputs["cu_seq_lens_q"],
            cu_seq_lens_k=inputs["cu_seq_lens_k"],
        ).logits
    finally:
        handle.remove()
    if logits.shape[0] != starts.shape[0]:
        raise ValueError(f"expected one reward per sequence ({starts.shape[0]}), the model gave {logits.shape[0]}")
    return logits
