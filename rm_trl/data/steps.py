"""Tokenization rules of stepwise rows (process rewards; see `docs/process_rewards.md`).

A stepwise row's one response is its solution text, each step followed by the step separator, which must be ONE
token of the tokenizer. Its `reward_positions` are the offsets of the separator tokens in the response ids, one per
step, and its `labels` a float per position (NaN = masked). Over-length rows lose whole steps from the end (cut
right after a separator, labels cut to match), never part of a step; a row where not even the first step fits is
over-length. With `steps_as_prefixes` (encoders, which pool one vector per sequence), a solution of N steps becomes N
responses, prefix i ending with separator i (+ the tokenizer's closing tokens), each read at its last token.

`group_solutions_by_prompt` merges tokenized rows that share their prompt ids into one row of several solutions,
so a packed batch encodes a problem's prompt once (training only: the row numbers of the others are not kept).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from datasets import Dataset

from .names import LENGTH, PROMPT_IDS, RESPONSE_IDS, REWARD_POSITIONS, ROW
from .report import DataValidationError

STEPS_DROPPED = "steps_dropped"  # the status of a row that lost steps at its end to fit max_length
STEPS_DROPPED_COLUMN = "_steps_dropped"  # per row, how many steps it lost (summed into the data report)


@dataclass(frozen=True)
class StepTokens:
    """How a stepwise layout is tokenized: the separator's text and its one token id, and the prefix reading."""

    separator: str
    separator_id: int
    as_prefixes: bool = False


def resolve_step_separator(tokenizer, separator: str) -> int:
    """The separator's token id; a clear error when the tokenizer does not keep it as one token, also between
    words (training adds it first: `rm_trl.modeling.ensure_step_separator`)."""
    alone = tokenizer(separator, add_special_tokens=False)["input_ids"]
    between = tokenizer(f"a b{separator}c d", add_special_tokens=False)["input_ids"]
    if len(alone) != 1 or between.count(alone[0]) != 1:
        raise DataValidationError(
            f"the step separator {separator!r} is not one token of the tokenizer (it tokenizes to {alone}); add it as "
            "a special token first (`rm_trl.modeling.ensure_step_separator(model, tokenizer, separator)`, which the "
            "stepwise trainer calls), or choose a `step_separator` the tokenizer holds as one token"
        )
    return alone[0]


@dataclass
class FittedSteps:
    """One stepwise row after the length policy: its responses, their reward positions, the labels kept, how many
    steps were dropped, its status and the row problems (as dicts) found in its tokens."""

    responses: list[list[int]]
    positions: list[list[int]]
    labels: list[float] | None
    dropped: int
    status: str
    problems: list[dict[str, Any]]


def fit_steps(
    row: int,
    prompt: list[int],
    response: list[int],
    solution: str,
    labels: list[float] | None,
    steps: StepTokens,
    suffix: list[int],
    budget: int | None,
    tokenizer,
    windowed: bool,
) -> FittedSteps:
    """Reward positions at the separators of one solution, whole steps dropped from its end until it fits
    `budget` (special tokens excluded). `windowed`: the text was cut before tokenizing (its end is dropped)."""
    from .tokenize import OK, OVERLENGTH

    n_steps = solution.count(steps.separator)
    found = [i for i, token in enumerate(response) if token == steps.separator_id]
    problems: list[dict[str, Any]] = []
    if len(found) > n_steps or (len(found) < n_steps and not windowed):
        k = _step_with_separator(solution, steps, tokenizer)
        message = f"{len(found)} step separator tokens for {n_steps} steps"
        if k is not None:
            message = (
                f"the step's text produces a step separator token (id {steps.separator_id}) or merges with the "
                f"separator after it: {message}"
            )
        problems.append(
            _problem(row, "completions" if k is None else f"completions[{k}]", "separator_in_step", message)
        )
    for k, position in enumerate(found):
        if position == (found[k - 1] if k else -1) + 1:  # nothing between two separators
            message = "step tokenizes to no tokens (only characters the tokenizer drops: control, zero-width, ...)"
            problems.append(_problem(row, f"completions[{k}]", "empty", message))
            break
    if problems:
        return FittedSteps([response + suffix], [found], labels, 0, OK, problems)
    keep = len(found) if budget is None else sum(1 for p in found if len(prompt) + p + 1 <= budget)
    status = OK if keep == n_steps else STEPS_DROPPED
    if keep == 0:
        return FittedSteps([response + suffix], [found], labels, 0, OVERLENGTH, [])
    found = found[:keep]
    response = response[: found[-1] + 1]
    labels = None if labels is None else labels[:keep]
    if steps.as_prefixes:
        responses = [response[: p + 1] + suffix for p in found]
        return FittedSteps(responses, [[len(r) - 1] for r in responses], labels, n_steps - keep, status, [])
    return FittedSteps([response + suffix], [found], labels, n_steps - keep, status, [])


def _problem(row: int, field: str, reason: str, message: str) -> dict[str, Any]:
    return dict(row=row, field=field, reason=reason, message=message)


def _step_with_separator(solution: str, steps: StepTokens, tokenizer) -> int | None:
    """The first step after which the solution's tokens do not hold one separator per step so far: its text
    produced a separator token, or merged with the separator after it."""
    texts = solution.split(steps.separator)[:-1]
    prefixes = ["".join(t + steps.separator for t in texts[: k + 1]) for k in range(len(texts))]
    for k, ids in enumerate(tokenizer(prefixes, add_special_tokens=False)["input_ids"] if prefixes else []):
        if ids.count(steps.separator_id) != k + 1:
            return k
    return None


def group_solutions_by_prompt(dataset: Dataset, target_names: tuple[str, ...] = ("labels",)) -> Dataset:
    """Merge tokenized rows with identical `prompt_ids` into one row whose responses are their solutions, in row
    order: `response_ids`, `reward_positions` and per-position targets concatenated, `length` recomputed, `row` of
    the first. For training only (the other rows' numbers are not kept)."""
    if len(dataset) == 0:
        return dataset
    targets = [name for name in target_names if name in dataset.column_names]
    columns = dataset.select_columns([ROW, PROMPT_IDS, RESPONSE_IDS, REWARD_POSITIONS, *targets]).to_dict()
    merged: dict[str, dict[str, Any]] = {}
    for i, prompt in enumerate(columns[PROMPT_IDS]):
        key = json.dumps(prompt)
        if key not in merged:
            merged[key] = {ROW: columns[ROW][i], PROMPT_IDS: prompt, RESPONSE_IDS: [], REWARD_POSITIONS: []}
            merged[key].update({name: [] for name in targets})
        group = merged[key]
        group[RESPONSE_IDS].extend(columns[RESPONSE_IDS][i])
        group[REWARD_POSITIONS].extend(columns[REWARD_POSITIONS][i])
        for name in targets:
            group[name].extend(columns[name][i])
    rows = list(merged.values())
    for group in rows:
        group[LENGTH] = len(group[PROMPT_IDS]) + sum(len(r) for r in group[RESPONSE_IDS])
    out = Dataset.from_list(rows)
    return out.cast(dataset.features) if set(out.column_names) == set(dataset.column_names) else out
