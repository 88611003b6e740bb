"""Stepwise data (process supervision): one prompt, one solution as a list of steps, and a label per step.

    {"prompt": str | [messages], "completions": [step_1, ..., step_N], "labels": [label_1, ..., label_N]}

A label is `true` / `false` (hard), a number in [0, 1] (soft, e.g. a Monte-Carlo estimate that the step leads to a
correct answer) or `null` (masked: no loss, not evaluated). Steps are plain strings; the prompt may be text or a
message list. A row parses to ONE response, the solution text `"".join(step + separator for step in steps)` (the
separator follows every step, the last one included), with `labels` = one float per step (NaN = masked). A message
prompt is rendered with the chat template and its generation prompt; the solution follows it as raw text, with no
end-of-turn after it, so the last token of a solution is its last separator.

Parse options: `step_separator` (default `"<|step|>"`: it must not occur in any step or prompt text),
`after_first_error` (`keep` every labelled step, `mask` steps after the first negative one, `truncate` them: the
steps are dropped and counted, or `error`: a row labelled after its first error is invalid). A step is negative when
its label is `false` or a number below 0.5. When scoring, labels are not read and may be absent.

See `docs/process_rewards.md`. Source formats that convert to this one (Math-Shepherd, PRM800K) are in
`formats/step_sources.py`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from datasets import Dataset

from ...metrics import Evaluation
from ...metrics.stepwise import evaluate_solutions, stepwise_metrics
from ..report import RowProblem
from .common import (
    ChatRenderer,
    Layout,
    ParsedRow,
    RowSchema,
    check_prompt,
    holds_messages,
    require_columns,
    without_nulls,
)
from .spec import ColumnSignature, FeedbackFormat, ScoredRows

STEPWISE = "stepwise"
DEFAULT_STEP_SEPARATOR = "<|step|>"
AFTER_FIRST_ERROR = ("keep", "mask", "truncate", "error")
NEGATIVE_BELOW = 0.5  # a soft label below this marks a wrong step (for after_first_error and first-error metrics)


def detect_stepwise_layout(
    column_names: Sequence[str],
    features: dict[str, Any],
    *,
    training: bool = True,
    after_first_error: str = "keep",
    step_separator: str = DEFAULT_STEP_SEPARATOR,
    **_: Any,
) -> Layout:
    """Stepwise layout; when scoring, labels are not read and the column may be absent."""
    if after_first_error not in AFTER_FIRST_ERROR:
        raise ValueError(f"after_first_error={after_first_error!r}; expected one of {AFTER_FIRST_ERROR}")
    if not isinstance(step_separator, str) or not step_separator:
        raise ValueError(f"step_separator={step_separator!r} must be a non-empty text")
    require_columns(STEPWISE, column_names, ("prompt", "completions", *(("labels",) if training else ())), ())
    targets = ("labels",) if training else ()
    return Layout(
        kind=STEPWISE,
        conversational=holds_messages(features.get("prompt")),
        targets=targets,
        fields=("prompt", "completions", *targets),
    )


def label_value(value: Any) -> float | None:
    """A label as a float (NaN when masked), or None when it is not a label."""
    if value is None:
        return math.nan
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, (int, float)) and 0.0 <= value <= 1.0:  # NaN fails both comparisons
        return float(value)
    return None


def first_error(labels: Sequence[float]) -> int | None:
    """Index of the first negative step (label < 0.5; masked steps are not errors), or None."""
    return next((k for k, v in enumerate(labels) if v == v and v < NEGATIVE_BELOW), None)


def check_labels(index: int, labels: Any, n_steps: int, after_first_error: str) -> list[float] | list[RowProblem]:
    """Each label checked and converted (NaN = masked); problems name `labels` or `labels[k]`."""
    if labels is None:
        return [RowProblem(index, "labels", "missing", "value is None")]
    if not isinstance(labels, list):
        return [RowProblem(index, "labels", "wrong_type", f"expected a list of labels, got {type(labels).__name__}")]
    if len(labels) != n_steps:
        return [RowProblem(index, "labels", "length_mismatch", f"{len(labels)} labels for {n_steps} steps")]
    values, problems = [], []
    for k, label in enumerate(labels):
        value = label_value(label)
        if value is None:
            message = f"expected true / false, a number in [0, 1] or null, got {type(label).__name__} {label!r:.40}"
            problems.append(RowProblem(index, f"labels[{k}]", "bad_label", message))
        values.append(value)
    if problems:
        return problems
    if all(math.isnan(v) for v in values):
        return [RowProblem(index, "labels", "all_masked", "every step is masked (null): the row teaches nothing")]
    error = first_error(values)
    if error is not None and after_first_error == "error":
        later = next((k for k in range(error + 1, n_steps) if not math.isnan(values[k])), None)
        if later is not None:
            message = f"step {later} is labelled after the first error (step {error}); after_first_error=error"
            return [RowProblem(index, f"labels[{later}]", "after_first_error", message)]
    if error is not None and after_first_error == "mask":
        values = values[: error + 1] + [math.nan] * (n_steps - error - 1)
    if error is not None and after_first_error == "truncate":
        values = values[: error + 1]
    return values


def render_step_prompt(index: int, prompt: Any, renderer: ChatRenderer | None) -> str | list[RowProblem]:
    """The prompt text: plain text as is; messages through the chat template, ending with the generation prompt."""
    if renderer is None:
        return prompt
    try:
        return renderer.tokenizer.apply_chat_template(without_nulls(prompt), tokenize=False, add_generation_prompt=True)
    except Exception as exc:  # template errors are data errors for this row
        return [RowProblem(index, "prompt", "template_error", f"chat template failed: {exc}")]


def parse_stepwise_row(
    row: dict[str, Any],
    index: int,
    layout: Layout,
    *,
    renderer: ChatRenderer | None,
    training: bool = True,
    step_separator: str = DEFAULT_STEP_SEPARATOR,
    after_first_error: str = "keep",
    **_: Any,
) -> ParsedRow | list[RowProblem]:
    """Validate one stepwise row (see the module docstring); problems name `completions[k]` and `labels[k]`."""
    problems: list[RowProblem] = []
    prompt = row.get("prompt")
    ok = check_prompt(index, prompt, problems, layout.conversational)
    if ok:
        texts = [m["content"] for m in prompt] if layout.conversational else [prompt]
        if any(step_separator in text for text in texts):
            message = f"the prompt contains the step separator {step_separator!r}"
            problems.append(RowProblem(index, "prompt", "contains_separator", message))
            ok = False
    steps = row.get("completions")
    if not isinstance(steps, list):
        got = "None" if steps is None else type(steps).__name__
        problems.append(RowProblem(index, "completions", "wrong_type", f"expected a list of steps, got {got}"))
        return problems
    if not steps:
        problems.append(RowProblem(index, "completions", "too_few", "a solution needs at least one step"))
        return problems
    for k, step in enumerate(steps):
        where = f"completions[{k}]"
        if not isinstance(step, str):
            got = "None" if step is None else type(step).__name__
            problems.append(RowProblem(index, where, "wrong_type", f"expected the step's text, got {got}"))
        elif not step.strip():
            problems.append(RowProblem(index, where, "empty", "step is empty or whitespace only"))
        elif step_separator in step:
            message = f"step contains the step separator {step_separator!r}"
            problems.append(RowProblem(index, where, "contains_separator", message))
        else:
            continue
        ok = False
    targets: dict[str, Any] = {}
    if training:
        labels = check_labels(index, row.get("labels"), len(steps), after_first_error)
        if labels and isinstance(labels[0], RowProblem):
            problems.extend(labels)
            ok = False
        else:
            targets["labels"] = labels
            steps = steps[: len(labels)]  # after_first_error=truncate: the steps after the first error go
    if not ok:
        return problems
    prompt_text = render_step_prompt(index, prompt, renderer)
    if isinstance(prompt_text, list):
        return prompt_text
    solution = "".join(step + step_separator for step in steps)
    return ParsedRow(prompt=prompt_text, responses=[solution], targets=targets)


STEPWISE_SCHEMA = RowSchema(name=STEPWISE, detect=detect_stepwise_layout, parse=parse_stepwise_row)


def steps_cut_after_error(dataset: Dataset, rows: Sequence[int], labels: Sequence[list[float]]) -> int:
    """How many steps `after_first_error=truncate` dropped from the parsed `rows` (their `labels` as parsed)."""
    steps = dataset.select_columns(["completions"])
    return sum(len(steps[int(r)]["completions"]) - len(v) for r, v in zip(rows, labels) if v is not None)


def gold_labels(value: Any) -> np.ndarray:
    """A source row's labels as floats (NaN: masked or not a label), for evaluation."""
    if not isinstance(value, list):
        return np.zeros(0)
    return np.array([math.nan if label_value(v) is None else label_value(v) for v in value], np.float64)


def evaluate_stepwise(scored: ScoredRows) -> Evaluation:
    """Each scored solution's step logits with its gold labels (and prompt, for best-of-N groups) from the source
    data, measured by `rm_trl.metrics.stepwise.evaluate_solutions`. A solution scored on fewer steps than it has
    labels (steps dropped for length) is measured on the steps it was scored on; a step without a valid gold label
    is masked."""
    raw = scored.raw
    labels, prompts = raw["labels"], raw["prompt"]
    solutions, groups, lengths = [], [], []
    for logits, row, length in zip(scored.rewards, scored.rows, scored.lengths):
        logits = np.asarray(logits, np.float64).reshape(-1)
        gold = gold_labels(labels[int(row)])[: len(logits)]
        gold = np.concatenate([gold, np.full(len(logits) - len(gold), math.nan)])
        solutions.append((logits, gold))
        prompt = prompts[int(row)]
        groups.append(prompt if isinstance(prompt, str) else json.dumps(prompt, sort_keys=True))
        lengths.append(float(np.sum(length)))
    return evaluate_solutions(solutions, groups=groups, lengths=lengths)


def write_step_scores(row: dict[str, Any], rewards: np.ndarray) -> None:
    """`rm-trl score` output: each step's logit and probability (the aggregated `reward` is the scorer's, which
    knows the recorded aggregation)."""
    logits = np.asarray(rewards, np.float64)
    row["step_rewards"] = [float(r) for r in logits]
    row["step_probabilities"] = [float(p) for p in np.exp(-np.logaddexp(0.0, -logits))]


STEPWISE_FORMAT = FeedbackFormat(
    name=STEPWISE,
    schema=STEPWISE_SCHEMA,
    signatures=(ColumnSignature(frozenset({"completions", "labels"}), 15),),
    columns_hint="completions/labels",
    headline="step_f1",
    metrics=stepwise_metrics,
    evaluate=evaluate_stepwise,
    write_scores=write_step_scores,
    # scoring needs no labels; an evaluation or conversion reads them
    score_options=lambda columns: {},
    response_field="completions[{}]".format,
    histogram_labels=("correct steps", "wrong steps"),
    per_position=True,
)
