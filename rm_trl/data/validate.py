"""Row validation shared by training, scoring and format conversion, so every path names bad rows the same way.

Each row is checked by its format's `RowSchema.parse`; a value the loader had to set aside (`columns.INVALID_CELLS`)
makes the row invalid when the format reads that field. The policy then decides: `error` stops with the first
problems, `skip` drops and counts the rows, `mark` (scoring) drops them from the model's input but keeps, per row,
what was wrong, so each output row can say it.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from datasets import Dataset

from .columns import INVALID_CELLS, invalid_cells, source_of
from .formats import ChatRenderer, Layout, ParsedRow, RowSchema
from .names import PROBLEMS, ROW
from .report import DataReport, DataValidationError, RowProblem

MAX_PROBLEMS_SHOWN = 10
POLICIES = ("error", "skip", "mark")


def describe_data(dataset: Dataset, split: str) -> str:
    """`the train data (path/to/file.jsonl)`: how messages name a split, with its file when it came from one."""
    source = source_of(dataset)
    return f"the {split} data" + (f" ({source})" if source else "")


def detect_layout(schema: RowSchema, dataset: Dataset, options: dict[str, Any], where: str) -> Layout:
    """The layout, from the columns and their types (every row counts, not the first)."""
    columns = [c for c in dataset.column_names if c != INVALID_CELLS]
    try:
        return schema.detect(columns, dict(dataset.features), **options)
    except DataValidationError as exc:
        raise DataValidationError(f"{where}: {exc}", exc.problems) from None


def parse_rows(
    dataset: Dataset,
    schema: RowSchema,
    layout: Layout,
    options: dict[str, Any],
    *,
    renderer: ChatRenderer | None,
    keep_parsed: bool = True,
    num_proc: int | None = None,
    desc: str = "Validating",
) -> Dataset:
    """One output row per input row: `row`, `_problems` (JSON, empty when valid) and, with `keep_parsed`, the
    parsed `_prompt`, `_responses` and targets."""
    targets = layout.targets if keep_parsed else ()

    def parse_batch(batch: dict[str, list], indices: list[int]) -> dict[str, list]:
        out: dict[str, list] = {ROW: list(indices), PROBLEMS: []}
        if keep_parsed:
            out.update({"_prompt": [], "_responses": [], **{name: [] for name in targets}})
        columns = [c for c in batch if c != INVALID_CELLS]
        cells = batch.get(INVALID_CELLS)
        for offset, index in enumerate(indices):
            set_aside = [c for c in invalid_cells(cells[offset] if cells else None) if c["field"] in layout.fields]
            if set_aside:
                parsed: ParsedRow | list[RowProblem] = [
                    RowProblem(index, c["field"], "wrong_type", c["message"]) for c in set_aside
                ]
            else:
                row = {c: batch[c][offset] for c in columns}
                parsed = schema.parse(row, index, layout, renderer=renderer, **options)
            valid = isinstance(parsed, ParsedRow)
            out[PROBLEMS].append("" if valid else json.dumps([p.__dict__ for p in parsed]))
            if keep_parsed:
                out["_prompt"].append(parsed.prompt if valid else "")
                out["_responses"].append(parsed.responses if valid else [])
                for name in targets:
                    out[name].append(parsed.targets[name] if valid else None)
        return out

    return dataset.map(
        parse_batch,
        with_indices=True,
        batched=True,
        remove_columns=dataset.column_names,
        num_proc=num_proc,
        desc=desc,
    )


def row_problems(dataset: Dataset) -> list[RowProblem]:
    """The problems recorded in a dataset's `_problems` column, in row order."""
    return [RowProblem(**p) for cell in dataset[PROBLEMS] if cell for p in json.loads(cell)]


def apply_invalid_policy(
    dataset: Dataset,
    problems: list[RowProblem],
    policy: str,
    report: DataReport,
    where: str,
    not_kept: dict[int, str],
    num_proc: int | None = None,
) -> Dataset:
    """Raise for invalid rows (`error`), or drop them and count them (`skip`, `mark`), recording per row what was
    wrong in `not_kept`. Rows are those of the `row` column; their problems are in `problems`."""
    if policy not in POLICIES:
        raise ValueError(f"invalid_rows={policy!r}; expected one of {POLICIES}")
    if not problems:
        return dataset
    bad_rows = sorted({p.row for p in problems})
    if policy == "error":
        raise DataValidationError(
            f"{len(bad_rows)} invalid row(s) in {where} (rows are 0-based), first problems:\n{_shown(problems)}\n"
            "Fix the data, or set `invalid_rows: skip` (`--invalid_rows skip`) to skip such rows; skipped rows "
            "are counted in the log and in data_report.json.",
            problems,
        )
    first_reason: dict[int, RowProblem] = {}
    for p in problems:
        first_reason.setdefault(p.row, p)
        not_kept[p.row] = (not_kept[p.row] + "; " if p.row in not_kept else "") + f"field '{p.field}': {p.message}"
    reasons = Counter(p.reason for p in first_reason.values())
    report.invalid.update(reasons)
    for reason in reasons:
        report.note_rows(f"invalid:{reason}", [r for r, p in first_reason.items() if p.reason == reason])
    bad = set(bad_rows)
    kept = dataset.filter(lambda row: row not in bad, input_columns=ROW, num_proc=num_proc)
    invalid_total = sum(report.invalid.values())
    if len(kept) == 0 and policy == "skip" and invalid_total == report.rows_in:
        raise DataValidationError(
            f"all {report.rows_in} rows of {where} are invalid ({_counts(report.invalid)}); first problems:\n"
            f"{_shown(problems)}\nFix the data: `invalid_rows: skip` skips invalid rows, but leaves nothing here.",
            problems,
        )
    return kept


def _shown(problems: list[RowProblem]) -> str:
    return "\n".join(f"  {p}" for p in problems[:MAX_PROBLEMS_SHOWN])


def _counts(counter: Counter) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(counter.items()))
