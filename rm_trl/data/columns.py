"""Rows read from a file -> an Arrow-backed `Dataset`, without converting any value to make a column fit.

Arrow holds one type per column. When one row's value has another type than the rest of its column (an int among
texts, a text among scores), `datasets`' loaders convert the whole column (decoding every JSON-looking string).
Here the odd value is set aside instead: its cell becomes null, and the value, its line and what is wrong with it go
to a hidden `INVALID_CELLS` column that validation turns into a row problem (only when the format reads that field)
and that `rm-trl score` uses to write the row back unchanged.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from typing import Any

import pyarrow as pa
from datasets import Dataset, DatasetInfo
from datasets.table import InMemoryTable

from .report import DataLoadError

INVALID_CELLS = "__invalid_cells__"
SOURCE_PREFIX = "rm-trl source: "
_ARROW_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError, TypeError)
_INT64 = 2**63


def source_of(dataset: Dataset) -> str | None:
    """The file (or description) a dataset was read from by rm-trl, for messages; `None` when unknown."""
    description = getattr(dataset.info, "description", None) or ""
    return description[len(SOURCE_PREFIX) :] if description.startswith(SOURCE_PREFIX) else None


def set_source(dataset: Dataset, source: str) -> Dataset:
    """Record where `dataset` comes from; `select` / `map` / `filter` carry it along."""
    dataset.info.description = SOURCE_PREFIX + source
    return dataset


def invalid_cells(value: str | None) -> list[dict[str, Any]]:
    """The set-aside cells of one row: `[{"field", "value", "message"}]`."""
    return json.loads(value) if value else []


def restore_row(row: dict[str, Any]) -> dict[str, Any]:
    """A row as the file held it: the set-aside values back in their fields, the hidden column gone."""
    for cell in invalid_cells(row.pop(INVALID_CELLS, None)):
        row[cell["field"]] = cell["value"]
    return row


def build_dataset(
    columns: dict[str, list[Any]],
    lines: list[int | None],
    source: str,
    invalid: dict[int, list[dict[str, Any]]] | None = None,
) -> Dataset:
    """Turn Python columns into a `Dataset`; values that do not fit their column are set aside (see module doc)."""
    if not lines:
        raise DataLoadError(f"{source} holds no rows")
    if INVALID_CELLS in columns:
        raise DataLoadError(f"{source}: the column name {INVALID_CELLS!r} is reserved by rm-trl; rename it")
    invalid = {} if invalid is None else invalid
    arrays = {name: _column_array(name, values, invalid, lines, source) for name, values in columns.items()}
    if invalid:
        cells = [json.dumps(invalid[i], allow_nan=True) if i in invalid else None for i in range(len(lines))]
        arrays[INVALID_CELLS] = pa.array(cells, pa.string())
    table = pa.Table.from_pydict(arrays)
    return Dataset(InMemoryTable(table), info=DatasetInfo(description=SOURCE_PREFIX + source))


def _column_array(
    name: str, values: list[Any], invalid: dict[int, list[dict[str, Any]]], lines: list[int | None], source: str
) -> pa.Array:
    values = _widen_big_ints(values)
    try:
        array = pa.array(values)
        if not _bools_made_numbers(array.type, values):
            return array
    except _ARROW_ERRORS:
        pass

    def set_aside(i: int, message: str) -> None:
        where = f"line {lines[i]}; " if lines[i] is not None else ""
        invalid.setdefault(i, []).append({"field": name, "value": values[i], "message": f"{message} ({where}{note})"})

    # a value no column can hold on its own (a list mixing texts and numbers) goes first
    note = "no column type can hold it"
    mixed = {i for i, v in enumerate(values) if v is not None and not _holdable(v)}
    for i in sorted(mixed):
        value = values[i]
        set_aside(i, f"got {type(value).__name__} {preview(value)}, which mixes types ({coarse_shape(value)})")
    rest = [None if i in mixed else v for i, v in enumerate(values)]
    for shape_of in (coarse_shape, _fine_shape):  # by kind first; by exact structure if kinds alone do not fit
        shapes = [shape_of(v) for v in rest]
        majority = _majority(shapes)
        fits = [_fits(s, majority) for s in shapes]
        try:
            array = pa.array([v if ok else None for v, ok in zip(rest, fits)])
        except _ARROW_ERRORS:
            continue
        if majority in ("null", "list"):
            return array
        expected = describe_shape(coarse_shape(next(v for v, s in zip(rest, shapes) if s == majority)))
        note = f"the other rows of this column hold {expected}; one column holds one type"
        for i, (value, ok) in enumerate(zip(rest, fits)):
            if not ok:
                set_aside(i, f"expected {expected}, got {type(value).__name__} {preview(value)}")
        return array
    raise DataLoadError(f"{source}: column {name!r} holds values that no single column type can hold")


def _bools_made_numbers(kind: pa.DataType, values: list[Any]) -> bool:
    """Arrow reads `[1.5, true]` as `[1.5, 1.0]`: a true/false among numbers must be set aside, not converted."""
    text = str(kind)
    if "bool" in text or not any(t in text for t in ("double", "int", "float")):
        return False
    stack = list(values)
    while stack:
        item = stack.pop()
        if isinstance(item, bool):
            return True
        if isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
    return False


def _holdable(value: Any) -> bool:
    try:
        pa.array([value])
    except _ARROW_ERRORS:
        return False
    return True


def _widen_big_ints(values: list[Any]) -> list[Any]:
    """Integers beyond 64 bits cannot be Arrow ints: as floats they keep their magnitude (an out-of-range score)."""
    if not any(type(v) is int and not -_INT64 <= v < _INT64 for v in values):
        return values
    return [_to_float(v) if type(v) is int else v for v in values]


def _to_float(value: int) -> float:
    try:
        return float(value)
    except OverflowError:
        return math.copysign(math.inf, value)


def coarse_shape(value: Any) -> str:
    """The kind of a value: null, bool, number, text, object, or `list of <kinds>` (`list` when empty)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        inner = sorted({coarse_shape(v) for v in value} - {"null"})
        return "list of " + "|".join(inner) if inner else "list"
    return type(value).__name__


def _fine_shape(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{_fine_shape(v)}" for k, v in sorted(value.items()) if v is not None) + "}"
    if isinstance(value, list):
        inner = sorted({_fine_shape(v) for v in value} - {"null"})
        return "list of " + "|".join(inner) if inner else "list"
    return coarse_shape(value)


def _majority(shapes: list[str]) -> str:
    counts = Counter(s for s in shapes if s not in ("null", "list"))
    if not counts:
        return "list" if "list" in shapes else "null"
    best = max(counts.values())
    return next(s for s in shapes if counts.get(s) == best)  # ties: the earliest row's kind


def _fits(shape: str, majority: str) -> bool:
    return shape in ("null", majority) or (shape == "list" and majority.startswith("list"))


_PLURAL = {"text": "texts", "number": "numbers", "bool": "true/false values", "object": "objects"}


def describe_shape(shape: str) -> str:
    """`number` -> `a number`, `list of text` -> `a list of texts`."""
    if shape.startswith("list of "):
        inner = [_PLURAL.get(s, "lists" if s.startswith("list") else s) for s in shape[8:].split("|")]
        return "a list of " + " or ".join(inner)
    return {"number": "a number", "bool": "true/false", "object": "an object", "list": "a list"}.get(shape, shape)


def preview(value: Any, width: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."
