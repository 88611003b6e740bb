"""What happened to every row: problems found, rows touched by truncation, rows left out and why.

A `DataReport` is kept per split, logged when the data is prepared, and saved as `data_report.json` beside the
model, so a reward model can always say exactly what it was trained on.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

EXAMPLE_ROWS_KEPT = 10


@dataclass(frozen=True)
class RowProblem:
    """One invalid value: the 0-based row of the source dataset, the field, a short reason code and a message."""

    row: int
    field: str
    reason: str
    message: str

    def __str__(self) -> str:
        return f"row {self.row}, field '{self.field}': {self.message}"


class DataLoadError(ValueError):
    """The data source could not be found or read. The message names the file, and the line when there is one."""


class DataValidationError(ValueError):
    """Raised for data that cannot be used as given. The message names each row and field at fault."""

    def __init__(self, message: str, problems: list[RowProblem] | None = None):
        super().__init__(message)
        self.problems = problems or []


@dataclass
class DataReport:
    """Counts for one split. `rows_out = rows_in - skipped_invalid - dropped`. Stepwise rows kept with fewer
    steps count in `truncated` (`steps_dropped`, rows) and `steps_dropped` (steps, by reason: `overlength`,
    `after_first_error`)."""

    split: str
    rows_in: int = 0
    rows_out: int = 0
    invalid: Counter = field(default_factory=Counter)
    truncated: Counter = field(default_factory=Counter)
    dropped: Counter = field(default_factory=Counter)
    flagged: Counter = field(default_factory=Counter)  # kept, but worth knowing (duplicates, conflicts, overlap)
    steps_dropped: Counter = field(default_factory=Counter)  # stepwise rows: steps (not rows) left out, by reason
    example_rows: dict[str, list[int]] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)

    def note_rows(self, key: str, rows: list[int]) -> None:
        kept = self.example_rows.setdefault(key, [])
        kept.extend(rows[: max(0, EXAMPLE_ROWS_KEPT - len(kept))])

    def to_dict(self) -> dict[str, Any]:
        return {
            "split": self.split,
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "skipped_invalid": dict(self.invalid),
            "truncated": dict(self.truncated),
            "dropped": dict(self.dropped),
            "flagged_kept": dict(self.flagged),
            **({"steps_dropped": dict(self.steps_dropped)} if self.steps_dropped else {}),
            "example_rows": self.example_rows,
            "settings": self.settings,
        }

    def summary(self) -> str:
        parts = [f"{self.split}: {self.rows_out}/{self.rows_in} rows kept"]
        if self.invalid:
            parts.append("skipped invalid " + _fmt(self.invalid))
        if self.truncated:
            parts.append("truncated " + _fmt(self.truncated))
        if self.dropped:
            parts.append("dropped " + _fmt(self.dropped))
        if self.flagged:
            parts.append("kept but flagged " + _fmt(self.flagged))
        if self.steps_dropped:
            parts.append("steps dropped " + _fmt(self.steps_dropped))
        if len(parts) == 1:
            parts.append("none truncated, none dropped")
        return "; ".join(parts)


def _fmt(counter: Counter) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(counter.items()))


def save_reports(reports: dict[str, DataReport], path: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump({name: r.to_dict() for name, r in reports.items()}, f, indent=2)
