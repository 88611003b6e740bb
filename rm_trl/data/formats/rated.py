"""Rated data: one response per row with a score, or several attribute scores (HelpSteer style).

    {"prompt": str, "response": str, "score": float}
    {"prompt": str, "response": str, "helpfulness": 3, "correctness": 4, "coherence": null}

`score_columns` names the targets (default `["score"]`). With several columns a missing value (null / NaN) is
allowed and masked out of the loss; a row needs at least one. For binary labels (BCE) every value is 0 or 1.
Conversational rows hold message lists: `prompt` (optional) and `response` (ending with the assistant turn);
without a `prompt` column, a message-list `response` is split before its last message.

Rated rows convert to ranked lists and to pairs (`rated_to_ranked`, `rated_to_pairwise`): responses are grouped by
prompt (message-list prompts compare as JSON) and ranked by score, ties sharing the smallest rank; a group with one
response, or with all responses tied, yields nothing and is counted. Pairs from ratings carry
`margin = score_chosen - score_rejected` (Llama 2's margin from a rating gap). `RATED_FORMAT` declares these, its
columns, metrics (`rm_trl.metrics.rated`) and the `reward` that `rm-trl score` writes, for the registry.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from datasets import Dataset

from ...metrics import Evaluation, evaluate_ratings, rated_metrics, same_prompt_margins
from ..names import PROMPT_IDS, RESERVED_COLUMNS
from ..report import DataValidationError, RowProblem
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
)
from .pairwise import PAIRWISE
from .ranked import RANKED, ranked_to_pairwise
from .spec import ColumnSignature, FeedbackFormat, ScoredRows

if TYPE_CHECKING:
    from ..arguments import DataArguments

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


def _key(prompt: Any) -> str:
    return prompt if isinstance(prompt, str) else json.dumps(prompt, sort_keys=True)


def ranks_from_scores(scores: Sequence[float], min_gap: float = 0.0) -> list[int]:
    """Rank 0 = best; a response's rank is how many others score more than `min_gap` above it (ties share)."""
    return [sum(1 for other in scores if other > s + min_gap) for s in scores]


def _rated_groups(dataset: Dataset, score_column: str) -> tuple[list[tuple[Any, list[Any], list[float]]], dict]:
    """Responses and scores per prompt. The same response text rated several times (several systems produced
    it, or several annotators scored it) becomes one response with the mean score, and is counted."""
    if score_column not in dataset.column_names:
        raise DataValidationError(f"rated data has no {score_column!r} column to convert with")
    groups: dict[str, tuple[Any, dict[str, tuple[Any, list[float]]]]] = {}
    missing = 0
    for prompt, response, score in zip(
        dataset["prompt"] if "prompt" in dataset.column_names else [""] * len(dataset),
        dataset["response"],
        dataset[score_column],
    ):
        if score is None or score != score:  # None or NaN: no rating to convert
            missing += 1
            continue
        _, responses = groups.setdefault(_key(prompt), (prompt, {}))
        responses.setdefault(_key(response), (response, []))[1].append(float(score))
    merged = sum(len(scores) - 1 for _, responses in groups.values() for _, scores in responses.values())
    out = [
        (prompt, [r for r, _ in responses.values()], [sum(s) / len(s) for _, s in responses.values()])
        for prompt, responses in groups.values()
    ]
    return out, {"rows_without_score": missing, "repeated_responses_averaged": merged}


def rated_to_ranked(
    dataset: Dataset, score_column: str = "score", min_score_gap: float = 0.0
) -> tuple[Dataset, dict[str, int]]:
    """One ranked row per prompt: its rated responses, ranked by score."""
    groups, counts = _rated_groups(dataset, score_column)
    rows, stats = [], {"groups": len(groups), **counts, "single_response": 0, "all_tied": 0}
    for prompt, responses, scores in groups:
        if len(responses) < 2:
            stats["single_response"] += 1
            continue
        ranks = ranks_from_scores(scores, min_score_gap)
        if len(set(ranks)) < 2:
            stats["all_tied"] += 1
            continue
        rows.append({"prompt": prompt, "completions": responses, "ranks": ranks, "scores": scores})
    stats["rows_out"] = len(rows)
    return Dataset.from_list(rows), stats


def rated_to_pairwise(
    dataset: Dataset, score_column: str = "score", strategy: str = "all_pairs", min_score_gap: float = 0.0
) -> tuple[Dataset, dict[str, int]]:
    """Pairs of responses to the same prompt whose scores differ by more than `min_score_gap`; margin = gap."""
    ranked, stats = rated_to_ranked(dataset, score_column, min_score_gap)
    if len(ranked) == 0:
        raise DataValidationError(f"no prompt has two differently rated responses: {stats}")
    pairs, pair_stats = ranked_to_pairwise(ranked, strategy, scores_column="scores")
    stats.update(pairs=pair_stats["rows_out"], identical_text=pair_stats["identical_text"], rows_out=len(pairs))
    return pairs, stats


def _to_pairwise(dataset: Dataset, args: DataArguments) -> tuple[Dataset, dict[str, Any]]:
    """The registry's rated -> pairwise conversion, following the recipe's data settings."""
    pairs, stats = rated_to_pairwise(dataset, args.score_column, args.pair_strategy, args.min_score_gap)
    return pairs, {"strategy": args.pair_strategy, **stats}


def _to_ranked(dataset: Dataset, args: DataArguments) -> tuple[Dataset, dict[str, Any]]:
    """The registry's rated -> ranked conversion, following the recipe's data settings."""
    return rated_to_ranked(dataset, args.score_column, args.min_score_gap)


def write_rated_scores(row: dict[str, Any], rewards: np.ndarray) -> None:
    """`rm-trl score` output: the response's reward."""
    row["reward"] = float(rewards[0])


def evaluate_rated(scored: ScoredRows) -> Evaluation:
    """Rewards against the gold `score_column` (and prompts, for same-prompt pairs) of the source data, measured by
    `rm_trl.metrics.rated`."""
    raw, rows = scored.raw, scored.rows
    values = np.array([r[0] for r in scored.rewards])
    gold = np.asarray(raw[scored.score_column], np.float64)[rows]
    prompts = np.asarray([str(p) for p in raw["prompt"]])[rows] if "prompt" in raw.column_names else None
    return evaluate_ratings(values, gold, prompts, np.concatenate(scored.lengths))


def rated_margins(scored: ScoredRows) -> np.ndarray:
    """Pairs of responses to the same prompt whose gold scores differ, the better first
    (`rm_trl.metrics.same_prompt_margins`). The prompt is the source's `prompt` text, or (tokenized data, as
    training keeps it) the prompt's token ids."""
    raw, rows = scored.raw, scored.rows
    values = np.array([r[0] for r in scored.rewards], np.float64)
    gold = np.asarray(raw[scored.score_column], np.float64)[rows]
    if "prompt" in raw.column_names:
        prompts = np.asarray([str(p) for p in raw["prompt"]])[rows]
    elif PROMPT_IDS in raw.column_names:
        prompts = np.asarray([" ".join(map(str, ids)) for ids in raw[PROMPT_IDS]])[rows]
    else:
        prompts = None
    return same_prompt_margins(values, gold, prompts)


RATED_FORMAT = FeedbackFormat(
    name=RATED,
    schema=RATED_SCHEMA,
    signatures=(ColumnSignature(frozenset({"response"}), 30),),
    columns_hint="response + score",
    headline="spearman",
    metrics=rated_metrics,
    evaluate=evaluate_rated,
    write_scores=write_rated_scores,
    converters={PAIRWISE: _to_pairwise, RANKED: _to_ranked},
    # scoring needs no gold score: score a `score` column only when there is one
    score_options=lambda columns: {"score_columns": tuple(c for c in ("score",) if c in columns)},
    gold_options=lambda score_column: {"score_columns": (score_column,)},
    response_field=lambda _: "response",
    report_notes=(
        "MAE and RMSE are measured after an affine least-squares fit of the rewards to the scores "
        "on the evaluated rows (`fit_slope`, `fit_intercept`).",
    ),
    preference_margins=rated_margins,
)
