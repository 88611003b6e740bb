"""Local data files read without type guessing, so every text reaches the model exactly as the file holds it.

JSON lines are parsed one line at a time with Python's `json` (line numbers stay right, and a broken line is named);
CSV cells stay text except in columns of numbers (no `None` / `N/A` -> null, no `"42"` -> 42); Parquet is typed
already. Values that do not fit their column are set aside by `columns.build_dataset`, never converted.
"""

from __future__ import annotations

import codecs
import csv
import json
import re
from collections.abc import Iterator
from typing import Any

from datasets import Dataset

from .columns import build_dataset, set_source
from .report import DataLoadError

MAX_DEPTH = 32  # nesting a data row may have (messages in completions: 4); deeper is refused, not parsed by Arrow
TEXT_FIELDS = frozenset({"prompt", "chosen", "rejected", "response", "completions", "completion", "text"})
NUMBER_FIELDS = frozenset({"score", "margin"})
_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")
_INT = re.compile(r"[+-]?\d+")
_FLOAT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|[+-]?(nan|inf|infinity)", re.IGNORECASE)


class _DuplicateKey(Exception):
    def __init__(self, key: str):
        self.key = key


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    record = dict(pairs)
    if len(record) != len(pairs):
        seen: set[str] = set()
        raise _DuplicateKey(next(k for k, _ in pairs if k in seen or seen.add(k)))
    return record


def parse_json(text: str, where: str) -> Any:
    """`json.loads` with a `DataLoadError` naming `where` for every way a line can be unusable."""
    try:
        value = json.loads(text, strict=False, object_pairs_hook=_object)
    except RecursionError:
        raise DataLoadError(f"{where}: nested too deeply to be a data row") from None
    except _DuplicateKey as exc:
        raise DataLoadError(f"{where}: key {exc.key!r} appears twice in one object; keep one") from None
    except ValueError as exc:
        hint = "; two JSON objects on one line?" if str(exc).startswith("Extra data") else ""
        raise DataLoadError(f"{where}: not valid JSON ({exc}{hint})") from None
    if text.count("[") + text.count("{") > MAX_DEPTH and _too_deep(value):
        raise DataLoadError(f"{where}: nested too deeply (more than {MAX_DEPTH} levels) to be a data row")
    if _SURROGATE.search(text):
        _check_unicode(value, where, "")
    return value


def _too_deep(value: Any) -> bool:
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            return True
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        stack.extend((child, depth + 1) for child in children)
    return False


def _check_unicode(value: Any, where: str, path: str) -> None:
    """Lone surrogates (`\\ud800` without its pair) are valid JSON escapes but not text: no UTF-8 can hold them."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            field = path.lstrip(".") or "(the row)"
            raise DataLoadError(
                f"{where}, field {field!r}: text holds a lone surrogate ({value[exc.start]!r}), which is not valid "
                "Unicode; fix the \\u escape"
            ) from None
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_unicode(key, where, path)
            _check_unicode(item, where, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _check_unicode(item, where, f"{path}[{i}]")


def _json_lines(path: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, record) per non-blank line; bytes are decoded per line so a bad byte is named exactly."""
    offset = row = 0
    with open(path, "rb") as f:
        for number, raw in enumerate(f, start=1):
            if number == 1 and raw.startswith(codecs.BOM_UTF8):
                raw, offset = raw[3:], 3
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DataLoadError(
                    f"{path} is not valid UTF-8: byte {offset + exc.start} (line {number}, row {row}) cannot be "
                    f"decoded ({exc.reason}); re-encode the file as UTF-8"
                ) from None
            offset += len(raw)
            if not text.strip():
                continue
            record = parse_json(text, f"{path}, line {number} (row {row})")
            if not isinstance(record, dict):
                raise DataLoadError(f"{path}, line {number} (row {row}): expected a JSON object, got {_kind(record)}")
            row += 1
            yield number, record


def _json_document(path: str) -> Iterator[tuple[int | None, dict[str, Any]]]:
    """A `.json` file holding one document: a list of row objects, or an object of equally long columns."""
    check_utf8(path)
    with open(path, encoding="utf-8-sig") as f:
        document = parse_json(f.read(), path)
    if isinstance(document, dict) and document and all(isinstance(v, list) for v in document.values()):
        lengths = {len(v) for v in document.values()}
        if len(lengths) > 1:
            raise DataLoadError(f"{path}: the columns of this JSON object have different lengths {sorted(lengths)}")
        names = list(document)
        document = [dict(zip(names, values)) for values in zip(*document.values())]
    if isinstance(document, dict):  # one row object
        document = [document]
    if not isinstance(document, list):
        raise DataLoadError(f"{path}: expected JSON lines, a JSON list of row objects or an object of columns")
    for row, record in enumerate(document):
        if not isinstance(record, dict):
            raise DataLoadError(f"{path}, row {row}: expected a JSON object, got {_kind(record)}")
        yield None, record


def _kind(value: Any) -> str:
    return {list: "a list", str: "a string", bool: "true/false", type(None): "null"}.get(type(value), "a number")


def _is_json_document(path: str) -> bool:
    """A `.json` file is one document when it starts with `[`, when its first line alone is not valid JSON, or when
    that line is all the file holds (an object of columns written on one line)."""
    if not path.lower().endswith(".json"):
        return False
    with open(path, "rb") as f:
        head = f.read(1 << 16).lstrip(codecs.BOM_UTF8).lstrip()
        if head.startswith(b"["):
            return True
        f.seek(0)
        first = f.readline().lstrip(codecs.BOM_UTF8)
        only_line = not f.read().strip()
    try:
        json.loads(first)
    except (ValueError, RecursionError):
        return True
    return only_line


def json_records(path: str) -> Iterator[dict[str, Any]]:
    """The rows of a JSON / JSON-lines file exactly as parsed (no keys filled in, no int -> float), in order:
    what `rm-trl score` writes back."""
    records = _json_document(path) if _is_json_document(path) else _json_lines(path)
    return (record for _, record in records)


def read_json(path: str) -> Dataset:
    """A JSON-lines file (`.jsonl`, or `.json` with one object per line), or a `.json` document."""
    records = _json_document(path) if _is_json_document(path) else _json_lines(path)
    columns: dict[str, list[Any]] = {}
    lines: list[int | None] = []
    for line, record in records:
        n = len(lines)
        for key, value in record.items():
            columns.setdefault(key, [None] * n).append(value)
        lines.append(line)
        for column in columns.values():  # keys this record does not have
            if len(column) == n:
                column.append(None)
    if not lines:
        raise DataLoadError(f"{path} holds no rows: the file is empty or holds only whitespace")
    return build_dataset(columns, lines, path)


def table_delimiter(path: str) -> str:
    """A tab for `.tsv` files, a comma for `.csv` (and anything else)."""
    return "\t" if path.lower().endswith(".tsv") else ","


def csv_records(path: str, delimiter: str = ",") -> Iterator[dict[str, str]]:
    """The rows of a CSV / TSV file as its cells' text, in the order `read_csv` reads them: what `rm-trl score`
    writes back (an id `007` stays `007`, not the number `read_csv` makes of a numeric-looking column)."""
    header, cells, _ = _csv_cells(path, delimiter)
    return (dict(zip(header, row)) for row in zip(*cells))


def read_csv(path: str, delimiter: str = ",") -> Dataset:
    """A CSV / TSV file with a header. Cells stay text; a column outside the text fields whose cells are mostly
    numbers becomes numeric (empty cell = missing), and a cell there that is not a number is set aside."""
    check_utf8(path)
    header, cells, lines = _csv_cells(path, delimiter)
    columns: dict[str, list[Any]] = {}
    invalid: dict[int, list[dict[str, Any]]] = {}
    for name, values in zip(header, cells):
        numbers = None if name in TEXT_FIELDS else _numbers(values, name in NUMBER_FIELDS)
        if numbers is None:
            columns[name] = values
            continue
        columns[name] = numbers
        for i, (text, number) in enumerate(zip(values, numbers)):
            if number is None and text.strip():
                message = f"expected a number, got {text!r:.40} (line {lines[i]}; leave the cell empty for none)"
                invalid.setdefault(i, []).append({"field": name, "value": text, "message": message})
    return build_dataset(columns, lines, path, invalid)


def _csv_cells(path: str, delimiter: str) -> tuple[list[str], list[list[str]], list[int | None]]:
    limit = csv.field_size_limit()
    csv.field_size_limit(2**31 - 1)  # one long text is one cell; the default limit is 128 KiB
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            # TSV (IANA text/tab-separated-values) has no quoting: a `"` is text, kept as it is.
            quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
            reader = csv.reader(f, delimiter=delimiter, quoting=quoting)
            try:
                header = next((r for r in reader if any(c.strip() for c in r)), None)
                if header is None:
                    raise DataLoadError(f"{path} holds no rows: the file is empty")
                repeated = sorted({c for c in header if header.count(c) > 1})
                if repeated:
                    raise DataLoadError(f"{path}: the header names the column(s) {repeated} twice")
                cells: list[list[str]] = [[] for _ in header]
                lines: list[int | None] = []
                last = reader.line_num
                for record in reader:
                    start, last = last + 1, reader.line_num
                    if not any(c.strip() for c in record) and len(record) <= 1:
                        continue
                    if len(record) != len(header):
                        raise DataLoadError(
                            f"{path}, line {start} (row {len(lines)}): {len(record)} fields where the header has "
                            f"{len(header)}"
                        )
                    for column, cell in zip(cells, record):
                        column.append(cell)
                    lines.append(start)
            except csv.Error as exc:
                raise DataLoadError(f"{path}, line {reader.line_num}: not valid CSV ({exc})") from None
    finally:
        csv.field_size_limit(limit)
    if not lines:
        raise DataLoadError(f"{path} holds no rows: only a header")
    return header, cells, lines


def _numbers(values: list[str], numeric_name: bool) -> list[int | float | None] | None:
    """The column as numbers when it is named like one (`score`, `margin`) or most of its non-empty cells are
    numbers (a rating column with one `N/A`), else `None`: a text column."""
    parsed = [_number(v) for v in values]
    filled = sum(1 for v in values if v.strip())
    numeric = sum(1 for p in parsed if p is not None)
    return parsed if numeric_name or 2 * numeric > filled else None


def _number(text: str) -> int | float | None:
    text = text.strip()
    if _INT.fullmatch(text):
        return int(text)
    if _FLOAT.fullmatch(text):
        return float(text)
    return None


def check_utf8(path: str, chunk_size: int = 1 << 24) -> None:
    """Raise a `DataLoadError` naming the byte and line of the first invalid UTF-8 sequence in a text file."""
    import codecs

    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = lines = 0
    with open(path, "rb") as f:
        while chunk := f.read(chunk_size):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                position = offset + exc.start
                line = lines + chunk[: exc.start].count(b"\n") + 1
                raise DataLoadError(
                    f"{path} is not valid UTF-8: byte {position} (line {line}, row {line - 1}) cannot be decoded "
                    f"({exc.reason}); re-encode the file as UTF-8"
                ) from None
            offset += len(chunk)
            lines += chunk.count(b"\n")
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:
        raise DataLoadError(
            f"{path} is not valid UTF-8: it ends inside a multi-byte character ({exc.reason})"
        ) from None


def read_parquet(path: str) -> Dataset:
    import pyarrow.parquet as pq
    from datasets.table import InMemoryTable

    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several types for an unreadable file
        raise DataLoadError(f"{path} is not a readable Parquet file ({type(exc).__name__}: {exc})") from None
    if table.num_rows == 0:
        raise DataLoadError(f"{path} holds no rows")
    return set_source(Dataset(InMemoryTable(table)), path)
