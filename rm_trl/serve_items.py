"""What the reward server does to each item before scoring: end-of-text strings, empty generations.

An RL loop sends a batch of generations and drops the whole batch when the server refuses one, so every item must
get a reward. A policy whose tokenizer differs from the reward model's leaves its end-of-text strings as plain text
at the end of a generation: they are removed (the model's own EOS rule adds its EOS back). A generation that shows
nothing (empty, or only whitespace, control, zero-width or filler characters) is scored as an empty response: the
prompt alone in the model's framing, as plain transformers reads `prompt + ""` (see `score_pairs`).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

import numpy as np

from .scoring import RewardScorer

# What policies end a generation with: ChatML / Qwen, Llama 2 / Mistral, GPT-2 / Qwen base, Llama 3, Gemma, Phi-3,
# Llama 3 base, Gemma chat. The reward model's own EOS and pad tokens are always added.
END_STRINGS = (
    "<|im_end|>",
    "</s>",
    "<|endoftext|>",
    "<|eot_id|>",
    "<eos>",
    "<|end|>",
    "<|end_of_text|>",
    "<end_of_turn>",
)
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Zs", "Zl", "Zp"})  # controls, zero-width / format, separators
_INVISIBLE_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")  # filler "letters" that render as nothing


def is_blank(text: str) -> bool:
    """True when `text` shows nothing: empty, or only whitespace, control, zero-width or filler characters."""
    return all(c.isspace() or c in _INVISIBLE_LETTERS or unicodedata.category(c) in _INVISIBLE_CATEGORIES for c in text)


def strip_end_strings(text: str, strings: Sequence[str]) -> str:
    """Drop trailing end-of-text / pad strings (and the whitespace around them) left by generation."""
    while True:
        stripped = text.rstrip()
        end = next((e for e in strings if e and stripped.endswith(e)), None)
        if end is None:
            return text
        text = stripped[: -len(end)]


def score_pairs(scorer: RewardScorer, prompts: list[str], responses: list[str]) -> np.ndarray:
    """Rewards of `(prompt, response)` pairs; an empty response (`""`) is scored as its prompt alone.

    The training pipeline refuses empty responses, so the prompt is passed as the response of an empty prompt: the
    pipeline tokenizes that into exactly the sequence a consumer reads for `prompt + ""` (the model's leading
    special tokens, the prompt, then EOS by the model's rule). NaN for an item with no text at all.
    """
    out = np.full(len(prompts), np.nan)
    kept = [i for i, (p, r) in enumerate(zip(prompts, responses)) if r or p.strip()]
    if kept:
        pairs = [(prompts[i], responses[i]) if responses[i] else ("", prompts[i]) for i in kept]
        out[kept] = scorer.score_texts([p for p, _ in pairs], [r for _, r in pairs])
    return out
