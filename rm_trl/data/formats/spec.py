"""`FeedbackFormat`: everything rm-trl knows about one feedback format, declared in that format's own module and
gathered in the registry (`rm_trl.data.formats.FORMATS`). Detection, conversion, scoring, evaluation and reports
ask the registry instead of naming formats, so a new format is one module plus one registry line."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np
from datasets import Dataset

from ...metrics import Evaluation
from ..report import RowProblem
from .common import RowSchema

if TYPE_CHECKING:
    from ..arguments import DataArguments

# converts a dataset of one format to another, following the recipe's `DataArguments`; returns the new dataset and
# counts of what it made and left out (a converter that makes pairs names its `strategy` first)
Converter = Callable[[Dataset, "DataArguments"], tuple[Dataset, dict[str, Any]]]


@dataclass(frozen=True)
class ColumnSignature:
    """Columns that name a format when all are present. Signatures of all formats are tried together, lowest
    `priority` first, so a specific one (completions + ranks) wins over a looser one (completions alone)."""

    columns: frozenset[str]
    priority: int


@dataclass(frozen=True)
class ScoredRows:
    """What a format's `evaluate` reads: the rewards of the scored rows (`[K]` per row, responses in order) and
    their response lengths in tokens, with the source dataset and the source row of each scored row."""

    raw: Dataset
    rows: np.ndarray
    rewards: list[np.ndarray]
    lengths: list[np.ndarray]
    score_column: str = "score"


def no_options(*_: Any) -> dict[str, Any]:
    """Default `score_options` / `gold_options`: the schema's own defaults are enough."""
    return {}


def no_problems(_: Dataset) -> list[RowProblem]:
    """Default `source_checks`: the schema's row checks are all a conversion needs."""
    return []


def indexed_response(k: int) -> str:
    """Default `response_field`: response `k` of the row."""
    return f"responses[{k}]"


@dataclass(frozen=True)
class FeedbackFormat:
    """One feedback format.

    - `name`, `schema`: the registry key and the `RowSchema` that detects the layout and parses a row;
    - `signatures`, `columns_hint`: how `detect_format` recognises its columns, and how its error names them;
    - `converters`: target format -> `Converter`, the conversions this format's data allows;
    - `metrics`: the pure metric function of its rows (training logs and evaluation report the same numbers);
    - `evaluate`: `ScoredRows -> rm_trl.metrics.Evaluation`, and `headline`, the metric that leads comparisons,
      bootstrap intervals and per-subset tables;
    - `write_scores(row, rewards)`: the keys `rm-trl score` adds to a scored row;
    - `score_options(column_names)`: parse options when scoring; `gold_options(score_column)`: those that make an
      evaluation or a conversion read the gold targets; `source_checks(dataset)`: row problems found before
      converting from this format, besides the schema's own;
    - `response_field(k)`: the field holding response `k`, for row problems;
    - `report_notes`, `histogram_labels`: what the evaluation report says about its metrics and plots;
    - `per_position`: `evaluate` / `write_scores` take every reward position of a row (a process reward model's
      step rewards, `[steps]`) instead of one reward per response (`[K]`);
    - `preference_margins`: `ScoredRows -> reward(better) - reward(worse)` over the preference pairs the rows give,
      what a temperature is fitted on (`docs/calibration.md`); `None`: the format gives no such pairs.
    """

    name: str
    schema: RowSchema
    signatures: tuple[ColumnSignature, ...]
    columns_hint: str
    headline: str
    metrics: Callable[..., dict[str, float]]
    evaluate: Callable[[ScoredRows], Evaluation]
    write_scores: Callable[[dict[str, Any], np.ndarray], None]
    converters: Mapping[str, Converter] = field(default_factory=lambda: MappingProxyType({}))
    score_options: Callable[[Sequence[str]], dict[str, Any]] = no_options
    gold_options: Callable[[str], dict[str, Any]] = no_options
    source_checks: Callable[[Dataset], list[RowProblem]] = no_problems
    response_field: Callable[[int], str] = indexed_response
    report_notes: tuple[str, ...] = ()
    histogram_labels: tuple[str, str] = ("chosen", "rejected")
    per_position: bool = False
    preference_margins: Callable[[ScoredRows], np.ndarray] | None = None


def join_or(items: Sequence[str]) -> str:
    """`a, b or c`."""
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]
