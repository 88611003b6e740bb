"""Rated data: one response per row with a score, or several attribute scores (HelpSteer style).

    {"prompt": str, "response": str, "score": float}
    {"prompt": str, "response": str, "helpfulness": 3, "correctness": 4, "coherence": null}

`score_columns` names the targets (default `["score"]`). With several columns a missing value (null / NaN) is
allowed and masked out of the loss; a row needs at least one. For binary labels (BCE) every value is 0 or 1.
Conversational rows hold message lists: `prompt` (optional) and `response` (ending with the assistant turn);
without a `prompt` column, a message-list `response` is split before its last message.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from ..report import DataValidationError, RowProblem
from .common import (
    RESERVED_COLUMNS,
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
)

RATED = "rated"


def detect_rated_layout(
    column_names: Sequence[str],
    features: dict[str, Any],
    *,
    score_columns: Sequence[str] = ("score",),
    training: bool = True,
    **_: Any,
) -> Layout:
    """Rated layout; when scoring, scores are not read and the columns may be absent."""
    score_columns = tuple(score_columns) if training else ()
    require_columns(RATED, column_names, ("response", *score_columns), ("prompt",))
    reserved = sorted(set(score_columns) & RESERVED_COLUMNS)
    if reserved:
        raise DataValidationError(f"score columns {reserved} clash with names rm-trl uses internally; rename them")
    implicit = "prompt" not in column_names
    return Layout(
        kind=RATED,
        implicit_prompt=implicit,
        conversational=holds_messages(features.get("response")),
        targets=score_columns,
        fields=(*(() if implicit else ("prompt",)), "response", *score_columns),
    )


def _score(index: int, name: str, value: Any, problems: list[RowProblem], binary: bool) -> float | None:
    """A checked score, NaN for a missing one (None or NaN), or None when the value is invalid."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return math.nan
    if not check_number(index, name, value, problems):
        return None
    if binary and value not in (0, 1):
        problems.append(RowProblem(index, name, "out_of_range", f"binary labels must be 0 or 1, got {value}"))
        return None
    return float(value)


def parse_rated_row(
    row: dict[str, Any],
    index: int,
    layout: Layout,
    *,
    renderer: ChatRenderer | None,
    binary_labels: bool = False,
    **_: Any,
) -> ParsedRow | list[RowProblem]:
    problems: list[RowProblem] = []
    response = row.get("response")
    ok = check_response(index, "response", response, problems, layout.conversational)
    if not layout.implicit_prompt:
        ok &= check_prompt(index, row.get("prompt"), problems, layout.conversational)
    targets: dict[str, float] = {}
    for name in layout.targets:
        value = _score(index, name, row.get(name), problems, binary_labels)
        if value is None:
            ok = False
        else:
            targets[name] = value
    if ok and targets and all(math.isnan(v) for v in targets.values()):
        names = list(layout.targets)
        field = names[0] if len(names) == 1 else ",".join(names)
        problems.append(RowProblem(index, field, "missing", "no score given"))
        ok = False
    if not ok:
        return problems
    if layout.implicit_prompt:
        prompt, response = (response[:-1], response[-1:]) if layout.conversational else ("", response)
    else:
        prompt = row["prompt"]
    rendered = render_responses(index, prompt, [response], renderer, "response")
    if isinstance(rendered, list):
        return rendered
    prompt_text, responses = rendered
    return ParsedRow(prompt=prompt_text, responses=responses, targets=targets)


RATED_SCHEMA = RowSchema(name=RATED, detect=detect_rated_layout, parse=parse_rated_row)
