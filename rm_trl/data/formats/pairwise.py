"""Pairwise data: one prompt, a chosen and a rejected response.

Layouts (detected from the column names and types):
- explicit prompt: `{"prompt": str, "chosen": str, "rejected": str}`
- implicit prompt: `{"chosen": str, "rejected": str}` holding whole transcripts (raw hh-rlhf); the prompt is their
  shared prefix, cut after the last turn marker (e.g. `"\\n\\nAssistant:"`).
- conversational: the same with lists of `{"role", "content"}` messages, rendered with the tokenizer's chat
  template (the prompt with `add_generation_prompt=True`, each response as the rest of the conversation).
- an optional numeric `margin` column (Llama 2's preference strength).

`PAIRWISE_FORMAT` declares the rest for the registry: its columns, metrics (`rm_trl.metrics.pairwise`), and the
`reward_chosen` / `reward_rejected` / `preference_probability` that `rm-trl score` writes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ...metrics import Evaluation, evaluate_pairs, pairwise_metrics
from ..report import RowProblem
from .common import (
    ChatRenderer,
    Layout,
    ParsedRow,
    RowSchema,
    check_number,
    check_prompt,
    check_response,
    holds_messages,
    render_responses,
    require_columns,
    without_nulls,
)
from .spec import ColumnSignature, FeedbackFormat, ScoredRows

PAIRWISE = "pairwise"
# Where the prompt ends in an implicit-prompt transcript (the `turn_markers` setting's default).
DEFAULT_TURN_MARKERS = (
    "\n\nAssistant:",
    "\nAssistant:",
    "<|im_start|>assistant\n",
    "<|start_header_id|>assistant<|end_header_id|>\n\n",
    "[/INST]",
)


def detect_pairwise_layout(
    column_names: Sequence[str], features: dict[str, Any], *, training: bool = True, **_: Any
) -> Layout:
    """Detect the pairwise layout, or raise a `DataValidationError` that says which columns are missing."""
    require_columns(PAIRWISE, column_names, ("chosen", "rejected"), ("prompt", "margin"))
    targets = ("margin",) if "margin" in column_names and training else ()
    implicit = "prompt" not in column_names
    return Layout(
        kind=PAIRWISE,
        implicit_prompt=implicit,
        conversational=holds_messages(features.get("chosen")) or holds_messages(features.get("rejected")),
        targets=targets,
        fields=(*(() if implicit else ("prompt",)), "chosen", "rejected", *targets),
    )


def split_implicit_prompt(chosen: str, rejected: str, turn_markers: Sequence[str]) -> tuple[str, str, str]:
    """Split two transcripts into (prompt, chosen_response, rejected_response) at the last shared turn marker.

    Without a marker in the shared prefix, the split falls at the last whitespace before the texts differ.
    """
    n = 0
    limit = min(len(chosen), len(rejected))
    while n < limit and chosen[n] == rejected[n]:
        n += 1
    shared = chosen[:n]
    cut = -1
    for marker in turn_markers:
        pos = shared.rfind(marker)
        if pos >= 0:
            cut = max(cut, pos + len(marker))
    if cut < 0:
        cut = max(shared.rfind(" "), shared.rfind("\n"))
        cut = 0 if cut < 0 else cut
    return chosen[:cut], chosen[cut:], rejected[cut:]


def _common_message_prefix(a: list[dict], b: list[dict]) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def parse_pairwise_row(
    row: dict[str, Any],
    index: int,
    layout: Layout,
    *,
    renderer: ChatRenderer | None,
    turn_markers: Sequence[str] = (),
    training: bool = True,
    **_: Any,
) -> ParsedRow | list[RowProblem]:
    """Validate one pairwise row and return it parsed, or the list of its problems. Identical responses are a
    problem for training only: a scorer scores them like any others."""
    problems: list[RowProblem] = []
    chosen, rejected = row.get("chosen"), row.get("rejected")
    conversational = layout.conversational
    ok = check_response(index, "chosen", chosen, problems, conversational)
    ok &= check_response(index, "rejected", rejected, problems, conversational)
    if not layout.implicit_prompt:
        ok &= check_prompt(index, row.get("prompt"), problems, conversational)
    targets: dict[str, float] = {}
    if "margin" in layout.targets:
        if check_number(index, "margin", row.get("margin"), problems):
            targets["margin"] = float(row["margin"])
        else:
            ok = False
    if not ok:
        return problems

    if conversational and layout.implicit_prompt:
        chosen, rejected = without_nulls(chosen), without_nulls(rejected)  # Arrow's filled-in keys differ by column
        n = _common_message_prefix(chosen, rejected)
        if chosen == rejected and not training:
            n = len(chosen) - 1  # scoring: the last message is the response of both
        if n == len(chosen) or n == len(rejected):  # one conversation is a prefix of the other: no response left
            which = "chosen" if n == len(chosen) else "rejected"
            if chosen == rejected:
                return [RowProblem(index, "rejected", "identical", "chosen and rejected conversations are identical")]
            return [RowProblem(index, which, "empty", "no message left once the shared conversation is removed")]
        if n == 0:
            return [
                RowProblem(
                    index,
                    "chosen",
                    "no_shared_prompt",
                    "chosen and rejected differ from their first message: no "
                    "shared prompt (give a `prompt` column, or the same prompt messages in both)",
                )
            ]
        prompt, chosen, rejected = chosen[:n], chosen[n:], rejected[n:]
    elif layout.implicit_prompt:
        prompt, chosen, rejected = split_implicit_prompt(chosen, rejected, turn_markers)
    else:
        prompt = row["prompt"]
    rendered = render_responses(index, prompt, [chosen, rejected], renderer, "chosen")
    if isinstance(rendered, list):
        return rendered
    prompt_text, (chosen_text, rejected_text) = rendered
    if training and chosen_text == rejected_text:
        return [RowProblem(index, "rejected", "identical", "chosen and rejected responses are identical")]
    if not chosen_text.strip() or not rejected_text.strip():
        which = "chosen" if not chosen_text.strip() else "rejected"
        return [RowProblem(index, which, "empty", "response is empty once the shared prompt is removed")]
    return ParsedRow(prompt=prompt_text, responses=[chosen_text, rejected_text], targets=targets)


PAIRWISE_SCHEMA = RowSchema(name=PAIRWISE, detect=detect_pairwise_layout, parse=parse_pairwise_row)


def write_pair_scores(row: dict[str, Any], rewards: np.ndarray) -> None:
    """Both rewards, and the Bradley-Terry probability that the chosen response is preferred."""
    row["reward_chosen"], row["reward_rejected"] = float(rewards[0]), float(rewards[1])
    row["preference_probability"] = 1.0 / (1.0 + math.exp(-(row["reward_chosen"] - row["reward_rejected"])))


def evaluate_pairwise(scored: ScoredRows) -> Evaluation:
    """Chosen and rejected rewards and lengths of the scored pairs, measured by `rm_trl.metrics.pairwise`."""
    chosen = np.array([r[0] for r in scored.rewards])
    rejected = np.array([r[1] for r in scored.rewards])
    chosen_len = np.array([length[0] for length in scored.lengths])
    rejected_len = np.array([length[1] for length in scored.lengths])
    return evaluate_pairs(chosen, rejected, chosen_len, rejected_len)


def pairwise_margins(scored: ScoredRows) -> np.ndarray:
    """`reward(chosen) - reward(rejected)` of every scored pair: its preference pair."""
    return np.array([float(r[0]) - float(r[1]) for r in scored.rewards], np.float64)


PAIRWISE_FORMAT = FeedbackFormat(
    name=PAIRWISE,
    schema=PAIRWISE_SCHEMA,
    signatures=(ColumnSignature(frozenset({"chosen", "rejected"}), 10),),
    columns_hint="chosen/rejected",
    headline="accuracy",
    metrics=pairwise_metrics,
    evaluate=evaluate_pairwise,
    write_scores=write_pair_scores,
    response_field=("chosen", "rejected").__getitem__,
    preference_margins=pairwise_margins,
)
