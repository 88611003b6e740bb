"""Packing for decoders: a prompt encoded once for all its responses, and several rows per sequence.

A packed sequence holds one or more groups, each `prompt, response_1, ..., response_K`. A custom 4D attention mask
lets the prompt attend causally to itself and each response attend to its prompt and causally to itself only (never
to a sibling response or another group), and position ids restart at each group and continue from the prompt for
every response. Each response then sees exactly the context it would see in its own unpadded sequence, so its
reward (read at its last token) equals the separate forward, while the prompt is encoded once instead of K times
and padding disappears. The mask is additive float (0 / dtype min): boolean masks give wrong results under the
`eager` attention implementation.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import torch

from .data.collators import RewardDataCollator, reward_offsets, row_fields
from .data.pipeline import PROMPT_IDS, RESPONSE_IDS
from .encoder_packing import padding_free_collator, unwrapped
from .reward_reading import has_token_head

logger = logging.getLogger(__name__)
PACKABLE_ATTENTION = ("eager", "sdpa")


def attention_implementation(model) -> str:
    base = unwrapped(model)
    return getattr(base.config, "_attn_implementation", None) or "eager"


def packing_support(model) -> tuple[bool, str]:
    """Whether `model` can take packed rows: a decoder whose head scores every token before pooling (the
    `*ForSequenceClassification` of Llama, Qwen2, Mistral, Gemma, ...) with an attention implementation that
    accepts a custom 4D mask."""
    base = unwrapped(model)
    if not has_token_head(base):
        return False, f"{type(base).__name__} is not a decoder with a per-token `score` head (encoders pool [CLS])"
    attention = attention_implementation(base)
    if attention not in PACKABLE_ATTENTION:
        return False, f"attention implementation {attention!r} cannot take a custom 4D mask"
    return True, "ok"


def plan_rows(lengths: list[int], max_row_tokens: int | None) -> list[list[int]]:
    """Assign examples (by packed length) to rows: one per row, or first-fit into rows of `max_row_tokens`."""
    if max_row_tokens is None:
        return [[i] for i in range(len(lengths))]
    rows: list[list[int]] = []
    room: list[int] = []
    for i, length in enumerate(lengths):
        for r, left in enumerate(room):
            if length <= left:
                rows[r].append(i)
                room[r] -= length
                break
        else:
            rows.append([i])
            room.append(max_row_tokens - length)
    return rows


@dataclass
class PackedRewardDataCollator:
    """Collates tokenized rows into packed sequences (see the module docstring).

    Returns `input_ids` and `position_ids` `[sequences, L]`, a float `attention_mask` `[sequences, 1, L, L]`,
    `reward_index` (flat positions of each response's `reward_positions`, in the unpacked order: row by row,
    responses in order; `rm_trl.reward_reading`), `group_sizes`, `row`, the float targets, and `token_counts` =
    (real tokens, padded tokens).

    `max_row_tokens=None` puts one row (a prompt and its responses) per sequence; a number packs several rows per
    sequence up to that many tokens (padding-free packing). `boolean_mask` gives a boolean mask (True = attend)
    for `sdpa`, which also works under autocast; otherwise the mask is additive float32 (for `eager`).
    """

    pad_token_id: int
    target_names: tuple[str, ...] = ()
    max_row_tokens: int | None = None
    pad_to_multiple_of: int | None = None
    boolean_mask: bool = False

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        lengths = [len(ex[PROMPT_IDS]) + sum(len(r) for r in ex[RESPONSE_IDS]) for ex in examples]
        rows = plan_rows(lengths, self.max_row_tokens)
        length = max(sum(lengths[i] for i in row) for row in rows)
        if self.pad_to_multiple_of:
            length = -(-length // self.pad_to_multiple_of) * self.pad_to_multiple_of
        n = len(rows)
        input_ids = torch.full((n, length), self.pad_token_id, dtype=torch.long)
        position_ids = torch.zeros((n, length), dtype=torch.long)
        group = torch.full((n, length), -1, dtype=torch.long)  # which example a token belongs to (-1: padding)
        segment = torch.full((n, length), -1, dtype=torch.long)  # 0: prompt, k: response k, -1: padding
        reward_position: dict[tuple[int, int], list[int]] = {}
        for r, members in enumerate(rows):
            cursor = 0
            for i in members:
                prompt = examples[i][PROMPT_IDS]
                pieces = [prompt, *examples[i][RESPONSE_IDS]]
                offsets = reward_offsets(examples[i])
                for k, piece in enumerate(pieces):
                    end = cursor + len(piece)
                    input_ids[r, cursor:end] = torch.tensor(piece, dtype=torch.long)
                    start_pos = 0 if k == 0 else len(prompt)
                    position_ids[r, cursor:end] = torch.arange(start_pos, start_pos + len(piece))
                    group[r, cursor:end] = i
                    segment[r, cursor:end] = k
                    if k > 0:
                        reward_position[(i, k - 1)] = [r * length + cursor + offset for offset in offsets[k - 1]]
                    cursor = end
        allowed = self._allowed(group, segment)[:, None]
        if self.boolean_mask:
            mask = allowed
        else:
            mask = torch.zeros(allowed.shape, dtype=torch.float32).masked_fill_(
                ~allowed, torch.finfo(torch.float32).min
            )
        reward_index = [
            p for i, ex in enumerate(examples) for k in range(len(ex[RESPONSE_IDS])) for p in reward_position[(i, k)]
        ]
        batch = {
            "input_ids": input_ids,
            "position_ids": position_ids,
            "attention_mask": mask,
            "reward_index": torch.tensor(reward_index, dtype=torch.long),
            "token_counts": torch.tensor([sum(lengths), n * length], dtype=torch.long),
            **row_fields(examples, self.target_names),
        }
        return batch

    @staticmethod
    def _allowed(group: torch.Tensor, segment: torch.Tensor) -> torch.Tensor:
        """`allowed[s, i, j]`: query token i may attend to key token j."""
        length = group.shape[1]
        causal = torch.ones((length, length), dtype=torch.bool).tril()
        same_group = group[:, :, None] == group[:, None, :]
        key_is_prompt = (segment == 0)[:, None, :]
        same_segment = segment[:, :, None] == segment[:, None, :]
        allowed = causal & same_group & (key_is_prompt | same_segment) & (group >= 0)[:, :, None]
        # Padding attends to itself only, which keeps its softmax finite; nothing attends to padding.
        padding = group < 0
        allowed |= torch.diag_embed(padding)
        return allowed


class TokenBudgetBatchSampler(torch.utils.data.Sampler):
    """Batches of rows whose padded size (rows x longest row) stays within `max_tokens`.

    Rows are shuffled with the seed, sorted by length within windows of `window` rows (so batches hold rows of
    similar length), cut into batches under the budget, and the batch order is reshuffled every epoch. The batch
    composition is fixed for a given seed, which keeps `len()` exact for the learning-rate schedule.
    """

    def __init__(self, lengths: list[int], max_tokens: int, seed: int = 0, window: int = 1000):
        self.max_tokens, self.seed, self.epoch = max_tokens, seed, 0
        generator = torch.Generator().manual_seed(seed)
        order = torch.randperm(len(lengths), generator=generator).tolist()
        self.batches: list[list[int]] = []
        for start in range(0, len(order), window):
            chunk = sorted(order[start : start + window], key=lambda i: lengths[i])
            batch: list[int] = []
            longest = 0
            for i in chunk:
                new_longest = max(longest, lengths[i])
                if batch and (len(batch) + 1) * new_longest > max_tokens:
                    self.batches.append(batch)
                    batch, new_longest = [], lengths[i]
                batch.append(i)
                longest = new_longest
            if batch:
                self.batches.append(batch)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed + 1 + self.epoch)
        for b in torch.randperm(len(self.batches), generator=generator).tolist():
            yield self.batches[b]

    def __len__(self) -> int:
        return len(self.batches)


def default_collator(model, tokenizer, args, target_names: tuple[str, ...]):
    """Packed sequences for decoders that support them, padding-free rows for the encoders that do (switching the
    model to per-sequence attention), plain padded batches otherwise (said in the log)."""
    if args.packing and getattr(args, "n_gpu", 1) > 1:  # the Trainer's nn.DataParallel splits rows, not sequences
        logger.warning("Packing off, plain padded batches: nn.DataParallel (several GPUs, one process); use DDP")
    elif args.packing and not has_token_head(unwrapped(model)):
        collator, reason = padding_free_collator(model, target_names)
        if collator is not None:
            logger.info("Packing: padding-free encoder batches; the model's sdpa attention now runs per sequence")
            return collator
        logger.warning("Packing off, plain padded batches: %s", reason)
    elif args.packing:
        supported, reason = packing_support(model)
        if supported:
            attention = attention_implementation(model)
            logger.info("Packing: each prompt encoded once for its responses (%s attention)", attention)
            return PackedRewardDataCollator(
                pad_token_id=tokenizer.pad_token_id,
                target_names=target_names,
                max_row_tokens=args.pack_rows_tokens,
                pad_to_multiple_of=args.pad_to_multiple_of,
                boolean_mask=attention == "sdpa",
            )
        logger.warning("Packing off, plain padded batches: %s", reason)
    return RewardDataCollator(
        pad_token_id=tokenizer.pad_token_id, target_names=target_names, pad_to_multiple_of=args.pad_to_multiple_of
    )
