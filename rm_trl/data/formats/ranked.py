"""Ranked data: one prompt, K >= 2 responses and their ranks (0 = best, ties share a rank).

    {"prompt": str, "completions": [str, ...], "ranks": [int, ...]}

K may vary from row to row. Ranks must be non-negative integers, one per completion, with 0 present (the best)
and at least two distinct values; a row whose completions are all tied teaches nothing and is invalid, and so is
a row that gives the same completion two different ranks. Completions may be message lists (conversational).
"""

from __future__ import annotations

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
    is_conversational,
    render_responses,
    require_columns,
)

RANKED = "ranked"


def detect_ranked_layout(column_names: Sequence[str], first_row: dict[str, Any], **_: Any) -> Layout:
    require_columns(RANKED, column_names, ("prompt", "completions", "ranks"), ())
    completions = first_row.get("completions")
    return Layout(
        kind=RANKED,
        conversational=isinstance(completions, list) and bool(completions) and is_conversational(completions[0]),
        targets=("ranks",),
    )


def _check_ranks(index: int, ranks: Any, k: int, problems: list[RowProblem]) -> bool:
    if ranks is None:
        problems.append(RowProblem(index, "ranks", "missing", "value is None"))
        return False
    if not isinstance(ranks, list) or any(isinstance(r, bool) or not isinstance(r, (int, float)) for r in ranks):
        problems.append(RowProblem(index, "ranks", "wrong_type", "expected a list of integer ranks"))
        return False
    if any(r != int(r) or r < 0 for r in ranks):
        problems.append(RowProblem(index, "ranks", "not_a_ranking", f"ranks must be integers >= 0, got {ranks}"))
        return False
    if len(ranks) != k:
        problems.append(RowProblem(index, "ranks", "length_mismatch", f"{len(ranks)} ranks for {k} completions"))
        return False
    if min(ranks) != 0:
        problems.append(
            RowProblem(
                index,
                "ranks",
                "not_a_ranking",
                f"the best completion has rank 0; got {ranks} (1-based ranks, or scores instead of ranks?)",
            )
        )
        return False
    if len(set(ranks)) < 2:
        problems.append(RowProblem(index, "ranks", "all_tied", "all completions share one rank"))
        return False
    return True


def parse_ranked_row(
    row: dict[str, Any], index: int, layout: Layout, *, renderer: ChatRenderer | None, **_: Any
) -> ParsedRow | list[RowProblem]:
    problems: list[RowProblem] = []
    ok = check_prompt(index, row.get("prompt"), problems, layout.conversational)
    completions = row.get("completions")
    if not isinstance(completions, list):
        got = "None" if completions is None else type(completions).__name__
        problems.append(RowProblem(index, "completions", "wrong_type", f"expected a list of completions, got {got}"))
        return problems
    if len(completions) < 2:
        problems.append(RowProblem(index, "completions", "too_few", f"need K >= 2 completions, got {len(completions)}"))
        return problems
    for i, completion in enumerate(completions):
        ok &= check_response(index, f"completions[{i}]", completion, problems, layout.conversational)
    ok &= _check_ranks(index, row.get("ranks"), len(completions), problems)
    if not ok:
        return problems
    ranks = [int(r) for r in row["ranks"]]
    rendered = render_responses(index, row["prompt"], completions, renderer, "completions")
    if isinstance(rendered, list):
        return rendered
    prompt_text, texts = rendered
    seen: dict[str, int] = {}
    for text, rank in zip(texts, ranks):
        if seen.setdefault(text, rank) != rank:
            return [RowProblem(index, "ranks", "conflicting", "the same completion appears with two different ranks")]
    return ParsedRow(prompt=prompt_text, responses=texts, targets={"ranks": [float(r) for r in ranks]})


RANKED_SCHEMA = RowSchema(name=RANKED, detect=detect_ranked_layout, parse=parse_ranked_row)
