"""Converters between feedback formats, where the data allows: rated -> ranked, rated -> pairwise,
ranked -> pairwise. Each returns the new dataset and counts of what it made and what it left out.

Responses are grouped by prompt (message-list prompts compare as JSON). Rated groups rank responses by score,
ties sharing the smallest rank; a group with one response, or with all responses tied, yields nothing and is
counted. Pairs from ratings carry `margin = score_chosen - score_rejected` (Llama 2's margin from a rating gap).

`convert_for` first validates every row in its SOURCE format, with the same row-and-field messages as training on
that format and the same `invalid_rows` policy (skipped rows are counted in the conversion stats), so nothing is
converted from a row that training on it would refuse.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from datasets import Dataset

from .columns import set_source, source_of
from .formats import PAIRWISE, RANKED, RATED, SCHEMAS
from .report import DataReport, DataValidationError, RowProblem
from .validate import ROW, apply_invalid_policy, describe_data, detect_layout, parse_rows, row_problems

if TYPE_CHECKING:
    from .arguments import DataArguments

logger = logging.getLogger(__name__)

PAIR_STRATEGIES = ("all_pairs", "best_vs_worst", "adjacent")  # how ranked or rated groups become pairs


def detect_format(column_names: Sequence[str]) -> str:
    """Name the feedback format from the columns: pairwise, ranked or rated."""
    columns = set(column_names)
    if {"chosen", "rejected"} <= columns:
        return PAIRWISE
    if {"completions", "ranks"} <= columns:
        return RANKED
    if "response" in columns:
        return RATED
    if "completions" in columns:  # ranked data without ranks: enough to score
        return RANKED
    raise DataValidationError(
        f"cannot tell the data format from the columns {sorted(columns)}: expected chosen/rejected (pairwise), "
        "completions/ranks (ranked) or response + score (rated)"
    )


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


def _pairs(ranks: Sequence[int], strategy: str) -> list[tuple[int, int]]:
    """Index pairs (better, worse) of one ranked group."""
    order = sorted(range(len(ranks)), key=lambda i: ranks[i])
    if strategy == "all_pairs":
        return [(i, j) for i in order for j in order if ranks[i] < ranks[j]]
    if strategy == "best_vs_worst":
        return [(order[0], order[-1])]
    if strategy == "adjacent":
        levels: list[int] = []
        for i in order:
            if not levels or ranks[i] != ranks[levels[-1]]:
                levels.append(i)
        return list(zip(levels, levels[1:]))
    raise ValueError(f"unknown pair strategy {strategy!r}")


def ranked_to_pairwise(
    dataset: Dataset, strategy: str = "all_pairs", scores_column: str | None = "scores"
) -> tuple[Dataset, dict[str, int]]:
    """Pairs (chosen, rejected) from each ranked row; with a per-completion `scores` column, pairs carry a margin."""
    use_scores = scores_column is not None and scores_column in dataset.column_names
    rows, stats = [], {"groups": len(dataset), "all_tied": 0, "identical_text": 0}
    for row in dataset:
        ranks = row["ranks"]
        if ranks is None or len(set(ranks)) < 2:
            stats["all_tied"] += 1
            continue
        for better, worse in _pairs(ranks, strategy):
            chosen, rejected = row["completions"][better], row["completions"][worse]
            if chosen == rejected:
                stats["identical_text"] += 1
                continue
            pair = {"prompt": row["prompt"], "chosen": chosen, "rejected": rejected}
            if use_scores:
                pair["margin"] = float(row[scores_column][better]) - float(row[scores_column][worse])
            rows.append(pair)
    stats["rows_out"] = len(rows)
    if not rows:
        raise DataValidationError(f"no pairs could be made from the ranked data: {stats}")
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


def validate_source(
    dataset: Dataset, source: str, args: DataArguments, invalid_rows: str = "error"
) -> tuple[Dataset, dict[str, int]]:
    """Check every row in its source format before conversion; raise (`error`) or drop and count (`skip`) the
    invalid ones. Returns the valid rows, unchanged, and the counts of skipped rows by reason."""
    schema = SCHEMAS[source]
    options: dict[str, Any] = {"score_columns": (args.score_column,)} if source == RATED else {}
    where = describe_data(dataset, source)
    layout = detect_layout(schema, dataset, options, where)
    checked = parse_rows(dataset, schema, layout, options, renderer=None, keep_parsed=False, desc="Validating")
    problems = row_problems(checked) + _score_list_problems(dataset, layout)
    if not problems:
        return dataset, {}
    report = DataReport(split=source, rows_in=len(dataset))
    kept = apply_invalid_policy(checked, problems, invalid_rows, report, where, {})
    valid = dataset.select(kept[ROW])
    src = source_of(dataset)
    if src is not None:
        set_source(valid, src)
    return valid, dict(report.invalid)


def _score_list_problems(dataset: Dataset, layout) -> list[RowProblem]:
    """Ranked rows may carry per-completion `scores` (they become pair margins): one finite number each."""
    if layout.kind != RANKED or "scores" not in dataset.column_names:
        return []
    problems = []
    for index, (scores, completions) in enumerate(zip(dataset["scores"], dataset["completions"])):
        k = len(completions) if isinstance(completions, list) else None
        ok = isinstance(scores, list) and len(scores) == k
        ok = ok and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in scores)
        if not ok:
            message = f"expected {k} finite numbers, got {scores!r:.60}"
            problems.append(RowProblem(index, "scores", "wrong_type", message))
    return problems


def convert_for(
    dataset: Dataset, target: str, args: DataArguments, invalid_rows: str = "error"
) -> tuple[Dataset, dict[str, Any] | None]:
    """Convert `dataset` to the `target` format a recipe trains on, following a `DataArguments`; rows are first
    validated in their source format under `invalid_rows` (see the module doc).

    Returns the dataset unchanged (and `None`) when it is already in the target format.
    """
    source = args.source_format if args.source_format != "auto" else detect_format(dataset.column_names)
    if source == target:
        return dataset, None
    if (source, target) not in ((RATED, PAIRWISE), (RANKED, PAIRWISE), (RATED, RANKED)):
        raise DataValidationError(f"cannot convert {source} data to {target}: the data does not hold that signal")
    origin = source_of(dataset) or f"the {source} data"
    dataset, skipped = validate_source(dataset, source, args, invalid_rows)
    if (source, target) == (RATED, PAIRWISE):
        converted, stats = rated_to_pairwise(dataset, args.score_column, args.pair_strategy, args.min_score_gap)
    elif (source, target) == (RANKED, PAIRWISE):
        converted, stats = ranked_to_pairwise(dataset, args.pair_strategy)
    else:
        converted, stats = rated_to_ranked(dataset, args.score_column, args.min_score_gap)
    strategy = args.pair_strategy if target == PAIRWISE else None
    stats = {"from": source, "to": target, "strategy": strategy, "skipped_invalid": skipped, **stats}
    logger.warning("Converted %s data to %s: %s", source, target, stats)
    set_source(converted, f"{target} rows converted from {origin} (rows numbered among the converted rows)")
    return converted, stats


def align_eval_targets(train: Dataset, evaluation: Dataset | None) -> tuple[Dataset | None, str | None]:
    """Pairwise train and eval data must agree on `margin`. An eval-only margin column is ignored (with a logged
    note); a train margin the eval data lacks is an error naming both, before anything is prepared."""
    if evaluation is None or "chosen" not in evaluation.column_names or "chosen" not in train.column_names:
        return evaluation, None
    in_train, in_eval = "margin" in train.column_names, "margin" in evaluation.column_names
    train_name, eval_name = describe_data(train, "train"), describe_data(evaluation, "eval")
    if in_eval and not in_train:
        note = f"ignoring the 'margin' column of {eval_name}: {train_name} has none, so training uses no margin"
        logger.warning("Note: %s", note)
        source = source_of(evaluation)
        evaluation = evaluation.remove_columns("margin")
        return (set_source(evaluation, source) if source else evaluation), note
    if in_train and not in_eval:
        raise DataValidationError(
            f"{train_name} has a 'margin' column and {eval_name} has none; give the eval rows margins, or drop the "
            "column from the train data"
        )
    return evaluation, None


def convert_train_eval(
    train: Dataset, evaluation: Dataset | None, target: str, args: DataArguments, invalid_rows: str = "error"
) -> tuple[Dataset, Dataset | None, dict[str, Any] | None, dict[str, Any] | None]:
    """`convert_for` on both splits, then `align_eval_targets`: what a recipe does with its data."""
    train, train_conversion = convert_for(train, target, args, invalid_rows)
    eval_conversion = None
    if evaluation is not None:
        evaluation, eval_conversion = convert_for(evaluation, target, args, invalid_rows)
    evaluation, _ = align_eval_targets(train, evaluation)
    return train, evaluation, train_conversion, eval_conversion
