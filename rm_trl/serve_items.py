"""What the reward server does to each item before scoring (end-of-text strings, empty generations), and how it
batches concurrent requests (`MicroBatcher`).

An RL loop sends a batch of generations and drops the whole batch when the server refuses one, so every item must
get a reward. A policy whose tokenizer differs from the reward model's leaves its end-of-text strings as plain text
at the end of a generation: they are removed (the model's own EOS rule adds its EOS back). A generation that shows
nothing (empty, or only whitespace, control, zero-width or filler characters) is scored as an empty response: the
prompt alone in the model's framing, as plain transformers reads `prompt + ""` (see `score_pairs`).
"""

from __future__ import annotations

import asyncio
import unicodedata
from collections.abc import Callable, Sequence

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
    An ensemble export gives `[N, 3]`: mean, std over heads, conservative reward (`RewardScorer.uncertainty`).
    """
    out = np.full((len(prompts), 3) if scorer.ensemble else len(prompts), np.nan)
    kept = [i for i, (p, r) in enumerate(zip(prompts, responses)) if r or p.strip()]
    if kept:
        pairs = [(prompts[i], responses[i]) if responses[i] else ("", prompts[i]) for i in kept]
        score = scorer.score_texts_uncertainty if scorer.ensemble else scorer.score_texts
        out[kept] = score([p for p, _ in pairs], [r for _, r in pairs])
    return out


class ItemsError(Exception):
    """Scoring failed for these items of one request (indices into that request's list)."""

    def __init__(self, items: list[int], message: str):
        super().__init__(message)
        self.items, self.message = items, message


class MicroBatcher:
    """Gathers concurrent scoring requests and scores them together in a worker thread."""

    def __init__(self, score_fn: Callable[[list[str], list[str]], np.ndarray], max_wait_ms: float, max_items: int):
        self.score_fn, self.max_wait, self.max_items = score_fn, max_wait_ms / 1000.0, max_items
        self.queue: asyncio.Queue = asyncio.Queue()
        self.task: asyncio.Task | None = None

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()

    async def score(self, prompts: list[str], responses: list[str]) -> list[float]:
        future = asyncio.get_running_loop().create_future()
        await self.queue.put((prompts, responses, future))
        return await future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            jobs = [await self.queue.get()]
            count = len(jobs[0][0])
            deadline = loop.time() + self.max_wait
            while count < self.max_items:
                timeout = deadline - loop.time()
                if timeout <= 0:
                    break
                try:
                    job = await asyncio.wait_for(self.queue.get(), timeout)
                except asyncio.TimeoutError:
                    break
                jobs.append(job)
                count += len(job[0])
            prompts = [p for job in jobs for p in job[0]]
            responses = [r for job in jobs for r in job[1]]
            try:
                rewards = await asyncio.to_thread(self.score_fn, prompts, responses)
            except Exception:  # a bad text fails its batch; answer each request on its own
                for job_prompts, job_responses, future in jobs:
                    await self._score_alone(job_prompts, job_responses, future)
                continue
            start = 0
            for job_prompts, _, future in jobs:
                if not future.done():
                    future.set_result(rewards[start : start + len(job_prompts)].tolist())
                start += len(job_prompts)

    async def _score_alone(self, prompts: list[str], responses: list[str], future: asyncio.Future) -> None:
        try:
            rewards = await asyncio.to_thread(self.score_fn, prompts, responses)
        except Exception as exc:
            failing = await asyncio.to_thread(self._failing_items, prompts, responses)
            if not future.done():
                future.set_exception(ItemsError(failing, str(exc)))
        else:
            if not future.done():
                future.set_result(rewards.tolist())

    def _failing_items(self, prompts: list[str], responses: list[str]) -> list[int]:
        """Which items fail on their own (only run once a request failed), so the error can name them."""
        failing = []
        for i in range(len(prompts)):
            try:
                self.score_fn(prompts[i : i + 1], responses[i : i + 1])
            except Exception:
                failing.append(i)
        return failing
