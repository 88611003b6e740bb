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
  sequence must have exactly one position, at its end; anything else (step rewards) is refused.
"""

from __future__ import annotations

import torch


def has_token_head(model) -> bool:
    """Whether the model's head scores every token (`score` of the `*ForSequenceClassification` decoders)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    base = getattr(base, "module", base)
    return hasattr(base, "score") and not getattr(base.config, "is_encoder_decoder", False)


class TokenRewardCapture:
    """Per-token head output, read at `reward_index` (see the module docstring)."""

    def __init__(self, model):
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        self.head = base.score

    def __call__(self, model, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        captured: list[torch.Tensor] = []
        handle = self.head.register_forward_hook(lambda module, args, output: captured.append(output))
        try:  # the hook lives for this call only: readers never pile up hooks on a shared model
            extra = {"position_ids": inputs["position_ids"]} if "position_ids" in inputs else {}
            model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"], **extra)
        finally:
            handle.remove()
        per_token = captured[-1]  # [sequences, L, num_labels]
        return per_token.reshape(-1, per_token.shape[-1])[inputs["reward_index"]]


class PooledRewardReader:
    """The model's own pooled logits, one reward per sequence (encoders)."""

    def __call__(self, model, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        if "position_ids" in inputs:
            raise ValueError("packed batches need a model whose head scores every token (a decoder)")
        input_ids = inputs["input_ids"]
        sequences, length = input_ids.shape
        index = inputs["reward_index"]
        last = inputs["attention_mask"].sum(dim=1) - 1 + torch.arange(sequences, device=index.device) * length
        if index.shape[0] != sequences or not torch.equal(index.to(last.device), last):
            raise ValueError(
                "this model pools one state per sequence (e.g. BERT's [CLS]): it reads one reward per sequence, at "
                "its end; rewards at other positions (step rewards) need a decoder whose head scores every token"
            )
        return model(input_ids=input_ids, attention_mask=inputs["attention_mask"]).logits


def reward_reader(model) -> TokenRewardCapture | PooledRewardReader:
    """The reader for `model`: per-token capture for decoders, pooled logits otherwise."""
    return TokenRewardCapture(model) if has_token_head(model) else PooledRewardReader()
