"""Converting data to the format a recipe trains on, where the data allows it: each format declares the conversions
from it in its `FeedbackFormat.converters` (rated -> ranked and rated -> pairwise in `formats/rated.py`, ranked ->
pairwise in `formats/ranked.py`; the functions are re-exported here). Each returns the new dataset and counts of what
it made and what it left out.

`convert_for` first validates every row in its SOURCE format, with the same row-and-field messages as training on
that format and the same `invalid_rows` policy (skipped rows are counted in the conversion stats), so nothing is
converted from a row that training on it would refuse. `detect_format` (which format the columns hold) lives with
the registry in `rm_trl.data.formats`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from datasets import Dataset

from .columns import set_source, source_of
from .formats import FORMATS, detect_format
from .formats.ranked import PAIR_STRATEGIES, ranked_to_pairwise
from .formats.rated import ranks_from_scores, rated_to_pairwise, rated_to_ranked
from .report import DataReport, DataValidationError
from .validate import ROW, apply_invalid_policy, describe_data, detect_layout, parse_rows, row_problems

if TYPE_CHECKING:
    from .arguments import DataArguments

logger = logging.getLogger(__name__)

__all__ = [
    "PAIR_STRATEGIES",
    "align_eval_targets",
    "convert_for",
    "convert_train_eval",
    "detect_format",
    "ranked_to_pairwise",
    "ranks_from_scores",
    "rated_to_pairwise",
    "rated_to_ranked",
    "validate_source",
]


def validate_source(
    dataset: Dataset, source: str, args: DataArguments, invalid_rows: str = "error"
) -> tuple[Dataset, dict[str, int]]:
    """Check every row in its source format before conversion; raise (`error`) or drop and count (`skip`) the
    invalid ones. Returns the valid rows, unchanged, and the counts of skipped rows by reason."""
    source_format = FORMATS[source]
    schema = source_format.schema
    options = {**source_format.gold_options(args.score_column), **_source_options(args)}
    where = describe_data(dataset, source)
    layout = detect_layout(schema, dataset, options, where)
    checked = parse_rows(dataset, schema, layout, options, renderer=None, keep_parsed=False, desc="Validating")
    problems = row_problems(checked) + source_format.source_checks(dataset)
    if not problems:
        return dataset, {}
    report = DataReport(split=source, rows_in=len(dataset))
    kept = apply_invalid_policy(checked, problems, invalid_rows, report, where, {})
    valid = dataset.select(kept[ROW])
    src = source_of(dataset)
    if src is not None:
        set_source(valid, src)
    return valid, dict(report.invalid)


def _source_options(args: DataArguments) -> dict[str, str]:
    """Step tag and neutral rating for Math-Shepherd / PRM800K rows (any `DataArguments`-like object works)."""
    return args.source_options() if hasattr(args, "source_options") else {}


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
    convert = FORMATS[source].converters.get(target) if source in FORMATS else None
    if convert is None:
        raise DataValidationError(f"cannot convert {source} data to {target}: the data does not hold that signal")
    origin = source_of(dataset) or f"the {source} data"
    dataset, skipped = validate_source(dataset, source, args, invalid_rows)
    converted, stats = convert(dataset, args)
    # a converter that makes pairs names its strategy; the key keeps its place either way
    stats = {"from": source, "to": target, "strategy": None, "skipped_invalid": skipped, **stats}
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
