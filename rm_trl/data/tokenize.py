"""Tokenization of a prompt and its responses, with an explicit over-length policy.

A row is stored as `prompt_ids` (the tokenizer's leading special tokens + the prompt) and `response_ids` (one list
per response: the response + the closing special tokens, EOS where the model expects one). Sequence k of the row is
`prompt_ids + response_ids[k]`. Keeping the prompt apart lets truncation cut it once for all responses, and lets a
packed batch encode it once. `reward_positions` says where each response's reward is read: its last token (after
the closing special tokens, as the standard head reads it) for the outcome rewards every format gives today.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from datasets import Dataset

from .formats import Layout
from .formats.common import response_field
from .names import LENGTH, PROMPT_IDS, RESPONSE_IDS, REWARD_POSITIONS, STATUS
from .steps import STEPS_DROPPED, STEPS_DROPPED_COLUMN, StepTokens, fit_steps

CHARS_PER_TOKEN = 64  # a token spans far fewer characters: a text cut to budget * 64 characters still overflows

OK = "ok"
PROMPT_TRUNCATED = "prompt_truncated"
RESPONSE_TRUNCATED = "response_truncated"
END_TRUNCATED = "end_truncated"
OVERLENGTH = "overlength"
IDENTICAL_AFTER_TRUNCATION = "identical_after_truncation"

TRUNCATED_STATUSES = (PROMPT_TRUNCATED, RESPONSE_TRUNCATED, END_TRUNCATED, STEPS_DROPPED)
EMPTY_MESSAGE = "text tokenizes to no tokens (only characters the tokenizer drops: control, zero-width, ...)"


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


def outcome_positions(response_ids: list[list[int]]) -> list[list[int]]:
    """One reward per response, read at its last token."""
    return [[len(response) - 1] for response in response_ids]


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


def text_window(budget: int | None) -> int | None:
    """Most characters of one text handed to the tokenizer. Tokenizing a 50 MB text in full costs gigabytes, and
    all but `budget` tokens of it are cut anyway; a text longer than the window is cut first and its row counted
    as truncated (the prompt keeps its end under `truncate_prompt`, everything else its start)."""
    return None if budget is None else max(budget, 64) * CHARS_PER_TOKEN


def tokenize_rows(
    parsed: Dataset,
    tokenizer,
    template: SequenceTemplate,
    layout: Layout,
    budget: int | None,
    truncation: str,
    *,
    training: bool,
    num_proc: int | None = None,
    desc: str = "Tokenizing",
    steps: StepTokens | None = None,
) -> Dataset:
    """Tokenize parsed rows (`row`, `_prompt`, `_responses`, targets) into `prompt_ids`, `response_ids`, `length`,
    a `_status` (ok / truncated / overlength / identical) and `_problems` (responses that tokenize to nothing).
    With `steps` (a stepwise layout), rewards are read at the step separators and over-length rows lose whole steps
    (`rm_trl.data.steps`): the per-position `labels` are cut to match and `_steps_dropped` counts the steps lost."""
    columns = ("row", PROMPT_IDS, RESPONSE_IDS, REWARD_POSITIONS, LENGTH, STATUS, "_problems", *layout.targets)
    if steps is not None:
        columns += (STEPS_DROPPED_COLUMN,)
    if len(parsed) == 0:
        return Dataset.from_dict({c: [] for c in columns})
    window = text_window(budget)
    targets = layout.targets

    def cut(text: str, keep_end: bool) -> str:
        if window is None or len(text) <= window:
            return text
        return text[-window:] if keep_end else text[:window]

    def tokenize_batch(batch: dict[str, list]) -> dict[str, list]:
        # Each sequence is tokenized as one text, prompt + response, exactly as a consumer (TRL, a PPO pipeline,
        # `tokenizer(prompt + response)`) will tokenize it; the tokens all responses share form the prompt part.
        prompts = [cut(p, keep_end=truncation == "truncate_prompt") for p in batch["_prompt"]]
        responses = [[cut(r, keep_end=False) for r in rs] for rs in batch["_responses"]]
        windowed = [
            (len(p) > len(q), any(len(r) > len(s) for r, s in zip(rs, ss)))
            for p, q, rs, ss in zip(batch["_prompt"], prompts, batch["_responses"], responses)
        ]
        prompt_ids_alone = tokenizer(prompts, add_special_tokens=False)["input_ids"]
        joint = [p + r for p, rs in zip(prompts, responses) for r in rs]
        joint_ids = tokenizer(joint, add_special_tokens=False)["input_ids"] if joint else []
        out: dict[str, list] = {
            c: [] for c in (PROMPT_IDS, RESPONSE_IDS, REWARD_POSITIONS, LENGTH, STATUS, "_problems")
        }
        if steps is not None:
            out.update({STEPS_DROPPED_COLUMN: [], **{t: [] for t in targets}})
        pos = 0
        for i, (prompt_alone, rs) in enumerate(zip(prompt_ids_alone, responses)):
            sequences = joint_ids[pos : pos + len(rs)]
            pos += len(rs)
            empty = [k for k, sequence in enumerate(sequences) if sequence == prompt_alone]
            row = batch["row"][i]
            problems = [
                dict(row=row, field=response_field(layout, k), reason="empty", message=EMPTY_MESSAGE) for k in empty
            ]
            if steps is not None:  # one solution: its prompt part is what it shares with the prompt alone
                n = shared_prefix_length([sequences[0], prompt_alone], cap=len(prompt_alone))
                prompt_ids, response = sequences[0][:n], sequences[0][n:]
                labels, solution = (batch[targets[0]][i] if targets else None), batch["_responses"][i][0]
                suffix = list(template.suffix)
                fitted = fit_steps(
                    row, prompt_ids, response, solution, labels, steps, suffix, budget, tokenizer, windowed[i][1]
                )
                status = OVERLENGTH if windowed[i][0] else fitted.status  # a prompt is never cut
                out[PROMPT_IDS].append(list(template.prefix) + prompt_ids)
                out[RESPONSE_IDS].append(fitted.responses)
                out[REWARD_POSITIONS].append(fitted.positions)
                out[LENGTH].append(len(out[PROMPT_IDS][-1]) + sum(len(r) for r in fitted.responses))
                out[STATUS].append(status)
                out["_problems"].append(json.dumps(fitted.problems) if fitted.problems else "")
                out[STEPS_DROPPED_COLUMN].append(fitted.dropped)
                for t in targets:
                    out[t].append(fitted.labels)
                continue
            # the prompt part is what every sequence shares with the prompt alone: a token merged across the
            # boundary goes to the responses even when there is only one (a rated row), so cutting keeps it
            n = shared_prefix_length([*sequences, prompt_alone], cap=len(prompt_alone))
            prompt_ids, response_ids = sequences[0][:n], [s[n:] for s in sequences]
            prompt_ids, response_ids, status = fit_to_length(prompt_ids, response_ids, budget, truncation)
            if any(windowed[i]):
                status = _windowed_status(status, truncation, response_cut=windowed[i][1])
            labels = next((batch[t][i] for t in targets if isinstance(batch[t][i], list)), None)
            if training and status != OVERLENGTH and has_conflicting_duplicate(response_ids, labels):
                status = IDENTICAL_AFTER_TRUNCATION if status != OK else "identical_tokens"
            out[PROMPT_IDS].append(list(template.prefix) + prompt_ids)
            out[RESPONSE_IDS].append([r + list(template.suffix) for r in response_ids])
            out[REWARD_POSITIONS].append(outcome_positions(out[RESPONSE_IDS][-1]))
            out[LENGTH].append(len(out[PROMPT_IDS][-1]) + sum(len(r) for r in out[RESPONSE_IDS][-1]))
            out[STATUS].append(status)
            out["_problems"].append(json.dumps(problems) if problems else "")
        return out

    # Scoring is called per RL step or request: hashing the closure (and with it the tokenizer) for the dataset's
    # fingerprint cost ~0.15 s a call, more than scoring a GRPO group. A fresh fingerprint skips it; scoring data
    # is never reused from a cache.
    fingerprint = None if training else uuid.uuid4().hex
    return parsed.map(
        tokenize_batch,
        batched=True,
        remove_columns=["_prompt", "_responses"],
        num_proc=num_proc,
        desc=desc,
        new_fingerprint=fingerprint,
    )


def _windowed_status(status: str, truncation: str, response_cut: bool) -> str:
    """A row with a text cut to the window is truncated (or over-length for the drop / error policies), even in
    the unlikely case its cut tokens fit the budget."""
    if truncation in ("drop", "error"):
        return OVERLENGTH
    if status != OK:
        return status
    if truncation == "keep_start":
        return END_TRUNCATED
    return RESPONSE_TRUNCATED if response_cut else PROMPT_TRUNCATED
