"""Tokenization of a prompt and its responses, with an explicit over-length policy.

A row is stored as `prompt_ids` (the tokenizer's leading special tokens + the prompt) and `response_ids` (one list
per response: the response + the closing special tokens, EOS where the model expects one). Sequence k of the row is
`prompt_ids + response_ids[k]`. Keeping the prompt apart lets truncation cut it once for all responses, and lets a
packed batch encode it once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

OK = "ok"
PROMPT_TRUNCATED = "prompt_truncated"
RESPONSE_TRUNCATED = "response_truncated"
END_TRUNCATED = "end_truncated"
OVERLENGTH = "overlength"
IDENTICAL_AFTER_TRUNCATION = "identical_after_truncation"

TRUNCATED_STATUSES = (PROMPT_TRUNCATED, RESPONSE_TRUNCATED, END_TRUNCATED)


@dataclass(frozen=True)
class SequenceTemplate:
    """The special tokens framing every sequence: `prefix + prompt + response + suffix`."""

    prefix: tuple[int, ...]
    suffix: tuple[int, ...]

    @classmethod
    def for_tokenizer(cls, tokenizer, *, append_eos: bool | None, conversational: bool) -> SequenceTemplate:
        """Probe the tokenizer for the special tokens it adds around a text.

        Conversational text comes out of the chat template with its own special tokens, so nothing is added.
        For plain text the tokenizer's own framing is kept ([CLS] ... [SEP] for BERT, BOS for Llama) and EOS is
        appended when `append_eos` says so (`None`: when the tokenizer has an EOS token it does not add itself).
        """
        if conversational:
            return cls(prefix=(), suffix=())
        plain = tokenizer("a b c", add_special_tokens=False)["input_ids"]
        framed = tokenizer("a b c", add_special_tokens=True)["input_ids"]
        start = _find_sublist(framed, plain)
        if start < 0:  # the tokenizer rewrites text when it adds special tokens; keep none of them
            prefix, suffix = (), ()
        else:
            prefix, suffix = tuple(framed[:start]), tuple(framed[start + len(plain) :])
        eos = tokenizer.eos_token_id
        if append_eos is None:
            append_eos = eos is not None and eos not in suffix
        if append_eos:
            if eos is None:
                raise ValueError("append_eos=True but the tokenizer has no EOS token")
            if not suffix or suffix[-1] != eos:
                suffix = suffix + (eos,)
        return cls(prefix=prefix, suffix=suffix)

    @property
    def num_special(self) -> int:
        return len(self.prefix) + len(self.suffix)


def _find_sublist(haystack: Sequence[int], needle: Sequence[int]) -> int:
    for i in range(len(haystack) - len(needle) + 1):
        if list(haystack[i : i + len(needle)]) == list(needle):
            return i
    return -1


def fit_to_length(
    prompt: list[int], responses: list[list[int]], budget: int | None, policy: str
) -> tuple[list[int], list[list[int]], str]:
    """Make every `prompt + response` fit in `budget` tokens (special tokens excluded) under `policy`.

    Returns the (possibly cut) prompt and responses and a status: `ok`, `prompt_truncated`,
    `response_truncated`, `end_truncated`, or `overlength` (for the `drop` and `error` policies, which do not cut).

    - `truncate_prompt`: the prompt loses its oldest tokens (from the left), the same cut for every response, so
      the longest response fits whole. A response that alone exceeds the budget is cut at its end and the prompt
      is emptied (`response_truncated`).
    - `keep_start`: the prompt keeps its first tokens, each response is cut at its end (`end_truncated`).
    """
    longest = max(len(r) for r in responses)
    if budget is None or len(prompt) + longest <= budget:
        return prompt, responses, OK
    if policy in ("drop", "error"):
        return prompt, responses, OVERLENGTH
    if policy == "truncate_prompt":
        if longest <= budget:
            keep = budget - longest
            return (prompt[len(prompt) - keep :] if keep else []), responses, PROMPT_TRUNCATED
        return [], [r[:budget] for r in responses], RESPONSE_TRUNCATED
    if policy == "keep_start":
        prompt = prompt[:budget]
        room = budget - len(prompt)
        return prompt, [r[:room] for r in responses], END_TRUNCATED
    raise ValueError(f"unknown truncation policy {policy!r}")


def shared_prefix_length(sequences: list[list[int]], cap: int) -> int:
    """Length of the token prefix every sequence shares, at most `cap` (the prompt's own token count).

    Usually this is exactly the prompt's tokens; when a tokenizer merges characters across the prompt/response
    boundary, the merged token belongs to the responses, so each sequence stays the joint tokenization.
    """
    n = 0
    shortest = min(len(s) for s in sequences)
    limit = min(cap, shortest)
    first = sequences[0]
    while n < limit and all(s[n] == first[n] for s in sequences):
        n += 1
    return n


def has_conflicting_duplicate(responses: list[list[int]], labels: list | None = None) -> bool:
    """True when two responses of a row are the same token sequence but carry different labels.

    Such a row teaches nothing (a pair whose chosen and rejected are identical) or contradicts itself (a ranked
    list giving one text two ranks). Without `labels` every response counts as differently labelled.
    """
    seen: dict[tuple[int, ...], object] = {}
    for i, response in enumerate(responses):
        label = i if labels is None else labels[i]
        key = tuple(response)
        if key in seen and seen[key] != label:
            return True
        seen.setdefault(key, label)
    return False
