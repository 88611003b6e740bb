"""Feedback formats and their registry: `FORMATS` maps each name to its `FeedbackFormat` (see `spec`), declared in
the format's own module (`pairwise`, `rated`, `ranked`): columns, `RowSchema`, conversions, metrics, score shape,
report notes. Detection (`detect_format`), conversion, scoring, `rm-trl score`, evaluation and reports ask the
registry; a new format is one module plus one `register_format` line here (or a call at run time)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

from ..report import DataValidationError
from .common import ChatRenderer, Layout, ParsedRow, RowSchema
from .pairwise import PAIRWISE, PAIRWISE_FORMAT, PAIRWISE_SCHEMA, split_implicit_prompt
from .ranked import RANKED, RANKED_FORMAT, RANKED_SCHEMA
from .rated import RATED, RATED_FORMAT, RATED_SCHEMA
from .spec import ColumnSignature, FeedbackFormat, ScoredRows, join_or
from .step_sources import MATH_SHEPHERD_FORMAT, PRM800K_FORMAT
from .stepwise import STEPWISE, STEPWISE_FORMAT, STEPWISE_SCHEMA

FORMATS: dict[str, FeedbackFormat] = {}


def register_format(feedback_format: FeedbackFormat) -> FeedbackFormat:
    """Add a format to the registry (its name must be new); returns it."""
    if feedback_format.name in FORMATS:
        raise ValueError(f"a feedback format named {feedback_format.name!r} is already registered")
    FORMATS[feedback_format.name] = feedback_format
    return feedback_format


register_format(PAIRWISE_FORMAT)
register_format(RATED_FORMAT)
register_format(RANKED_FORMAT)
register_format(STEPWISE_FORMAT)
register_format(MATH_SHEPHERD_FORMAT)  # source formats: converted to stepwise rows
register_format(PRM800K_FORMAT)


class _Schemas(Mapping[str, RowSchema]):
    """Each registered format's `RowSchema` by name, read from `FORMATS` (formats registered later included)."""

    def __getitem__(self, name: str) -> RowSchema:
        return FORMATS[name].schema

    def __iter__(self) -> Iterator[str]:
        return iter(FORMATS)

    def __len__(self) -> int:
        return len(FORMATS)


SCHEMAS: Mapping[str, RowSchema] = _Schemas()


def detect_format(column_names: Sequence[str]) -> str:
    """Name the feedback format from the columns: the registered signature of lowest priority that they hold."""
    columns = set(column_names)
    signatures = sorted(
        ((signature, name) for name, f in FORMATS.items() for signature in f.signatures), key=lambda s: s[0].priority
    )
    for signature, name in signatures:
        if signature.columns <= columns:
            return name
    by_priority = sorted(FORMATS.values(), key=lambda f: min(s.priority for s in f.signatures))
    raise DataValidationError(
        f"cannot tell the data format from the columns {sorted(columns)}: expected "
        + join_or([f"{f.columns_hint} ({f.name})" for f in by_priority])
    )


__all__ = [
    "FORMATS",
    "PAIRWISE",
    "PAIRWISE_SCHEMA",
    "RANKED",
    "RANKED_SCHEMA",
    "RATED",
    "RATED_SCHEMA",
    "SCHEMAS",
    "STEPWISE",
    "STEPWISE_SCHEMA",
    "ChatRenderer",
    "ColumnSignature",
    "FeedbackFormat",
    "Layout",
    "ParsedRow",
    "RowSchema",
    "ScoredRows",
    "detect_format",
    "join_or",
    "register_format",
    "split_implicit_prompt",
]
