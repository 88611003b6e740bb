"""Ranked data: one prompt, K >= 2 responses and their ranks (0 = best, ties share a rank).

    {"prompt": str, "completions": [str, ...], "ranks": [int, ...]}

K may vary from row to row. Ranks must be finite non-negative integers (numbers, not strings), one per completion,
with 0 present (the best) and at least two distinct values; a row whose completions are all tied teaches nothing and
is invalid, and so is a row that gives the same completion two different ranks. Completions may be message lists
(conversational). When scoring, ranks are not read and none of these training rules apply.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from ..report import RowProblem
from .common import (
    ChatRenderer,
    Layout,
    ParsedRow,
    RowSchema,
    check_prompt,
    check_response,
    holds_messages,
    render_responses,
    require_columns,
)

RANKED = "ranked"
MAX_RANK = 2**24  # ranks are float32 targets: integers up to 2^24 stay exact
_NONE = object()


def detect_ranked_layout(
    column_names: Sequence[str], features: dict[str, Any], *, training: bool = True, **_: Any
) -> Layout:
    """Ranked layout; when scoring, ranks are not read and the column may be absent."""
    require_columns(RANKED, column_names, ("prompt", "completions", *(("ranks",) if training else ())), ())
    targets = ("ranks",) if training else ()
    return Layout(
        kind=RANKED,
        conversational=holds_messages(features.get("completions"), depth=2),
        targets=targets,
        fields=("prompt", "completions", *targets),
    )


def _check_ranks(index: int, ranks: Any, k: int, problems: list[RowProblem]) -> bool:
    def problem(reason: str, message: str) -> bool:
        problems.append(RowProblem(index, "ranks", reason, message))
        return False

    if ranks is None:
        return problem("missing", "value is None")
    if not isinstance(ranks, list):
        return problem("wrong_type", f"expected a list of ranks, got {type(ranks).__name__}")
    odd = next((r for r in ranks if isinstance(r, bool) or not isinstance(r, (int, float))), _NONE)
    if odd is not _NONE:
        return problem("wrong_type", f"ranks must be numbers, got {type(odd).__name__} {odd!r:.40}")
    if any(isinstance(r, float) and not math.isfinite(r) for r in ranks):
        return problem("not_finite", f"ranks must be finite, got {ranks}")
    if any(r != int(r) or r < 0 for r in ranks):
        return problem("not_a_ranking", f"ranks must be integers >= 0, got {ranks}")
    if max(ranks, default=0) > MAX_RANK:
        return problem("out_of_range", f"ranks must be at most {MAX_RANK} (they are compared as float32), got {ranks}")
    if len(ranks) != k:
        return problem("length_mismatch", f"{len(ranks)} ranks for {k} completions")
    if min(ranks) != 0:
        return problem(
            "not_a_ranking", f"the best completion has rank 0; got {ranks} (1-based ranks, or scores instead of ranks?)"
        )
    if len(set(ranks)) < 2:
        return problem("all_tied", "all completions share one rank")
    return True


def parse_ranked_row(
    row: dict[str, Any],
    index: int,
    layout: Layout,
    *,
    renderer: ChatRenderer | None,
    training: bool = True,
    **_: Any,
) -> ParsedRow | list[RowProblem]:
    """Validate one ranked row. Training needs K >= 2, a valid ranking that is not all ties, and one rank per
    distinct completion; scoring needs only K >= 1 valid completions."""
    problems: list[RowProblem] = []
    ok = check_prompt(index, row.get("prompt"), problems, layout.conversational)
    completions = row.get("completions")
    if not isinstance(completions, list):
        got = "None" if completions is None else type(completions).__name__
        problems.append(RowProblem(index, "completions", "wrong_type", f"expected a list of completions, got {got}"))
        return problems
    least = 2 if training else 1
    if len(completions) < least:
        problems.append(
            RowProblem(index, "completions", "too_few", f"need K >= {least} completions, got {len(completions)}")
        )
        return problems
    for i, completion in enumerate(completions):
        ok &= check_response(index, f"completions[{i}]", completion, problems, layout.conversational)
    if training:
        ok &= _check_ranks(index, row.get("ranks"), len(completions), problems)
    if not ok:
        return problems
    rendered = render_responses(index, row["prompt"], completions, renderer, "completions")
    if isinstance(rendered, list):
        return rendered
    prompt_text, texts = rendered
    if not training:
        return ParsedRow(prompt=prompt_text, responses=texts)
    ranks = [int(r) for r in row["ranks"]]
    seen: dict[str, int] = {}
    for text, rank in zip(texts, ranks):
        key = text if isinstance(text, str) else json.dumps(text, sort_keys=True)  # message lists when not rendered
        if seen.setdefault(key, rank) != rank:
            return [RowProblem(index, "ranks", "conflicting", "the same completion appears with two different ranks")]
    return ParsedRow(prompt=prompt_text, responses=texts, targets={"ranks": [float(r) for r in ranks]})


RANKED_SCHEMA = RowSchema(name=RANKED, detect=detect_ranked_layout, parse=parse_ranked_row)
