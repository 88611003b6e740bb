"""rm-trl's own file readers: every shape of file they accept, read without converting a value, and the places
row numbers and file names come from."""

from __future__ import annotations

import json

import pytest
from datasets import Dataset

from rm_trl.data import DataArguments, DataLoadError, DataValidationError, load_data, split_by_prompt
from rm_trl.data.columns import INVALID_CELLS, restore_row, source_of
from rm_trl.data.converters import convert_train_eval
from rm_trl.data.tokenize import text_window

P = {"prompt": "Q?", "chosen": " a", "rejected": " b"}


def test_json_documents_and_json_lines(tmp_path):
    rows = [P, {**P, "chosen": " c"}]
    (tmp_path / "array.json").write_text(json.dumps(rows, indent=2))
    (tmp_path / "columns.json").write_text(json.dumps({k: [r[k] for r in rows] for k in P}, indent=2))
    (tmp_path / "lines.json").write_text("".join(json.dumps(r) + "\n" for r in rows))
    for name in ("array.json", "columns.json", "lines.json"):
        assert load_data(str(tmp_path / name)).to_list() == rows, name


def test_line_endings_bom_and_unicode_line_separators_are_not_row_breaks(tmp_path):
    text = "a\u2028b\u2029c\x85d\x0be"  # str.splitlines() would cut the line at each of these
    path = tmp_path / "d.jsonl"
    path.write_bytes(
        b"\xef\xbb\xbf" + (json.dumps(P) + "\r\n" + json.dumps({**P, "chosen": text}, ensure_ascii=False)).encode()
    )
    assert load_data(str(path))["chosen"] == [" a", text]


def test_csv_keeps_text_and_reads_numbers_only_where_they_are(tmp_path):
    long_cell = "x" * 200_000  # beyond the csv module's default 128 KiB field limit
    path = tmp_path / "d.csv"
    path.write_text(f'prompt,response,score,id\n007,"two\nlines",1,a1\n"{long_cell}",None,,7\n', encoding="utf-8")
    data = load_data(str(path))
    assert data.to_list() == [
        {"prompt": "007", "response": "two\nlines", "score": 1, "id": "a1"},
        {"prompt": long_cell, "response": "None", "score": None, "id": "7"},
    ]
    (tmp_path / "t.tsv").write_text("prompt\tresponse\tscore\nQ\t1.50\t2.5\n")
    assert load_data(str(tmp_path / "t.tsv")).to_list() == [{"prompt": "Q", "response": "1.50", "score": 2.5}]
    (tmp_path / "bad.csv").write_text("prompt,response\nQ,a\nQ,b,c\n")
    with pytest.raises(DataLoadError, match=r"bad.csv, line 3 \(row 1\): 3 fields where the header has 2"):
        load_data(str(tmp_path / "bad.csv"))


def test_set_aside_values_come_back_unchanged(tmp_path):
    rows = [{**P, "margin": 1.5}, {**P, "margin": "high", "chosen": [" x", 2]}, {**P, "margin": 10**40}]
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    data = load_data(str(path))
    assert INVALID_CELLS in data.column_names and data[1]["margin"] is None
    assert [restore_row(r) for r in data] == [rows[0], rows[1], {**P, "margin": 1e40}]


def test_globs_splits_and_conversions_say_where_rows_come_from(tmp_path):
    for name in ("a", "b"):
        (tmp_path / f"{name}.jsonl").write_text(
            "".join(json.dumps({**P, "prompt": f"{name}{i}"}) + "\n" for i in range(5))
        )
    both = load_data(str(tmp_path / "*.jsonl"))
    assert len(both) == 10 and "a.jsonl from row 0" in source_of(both) and "b.jsonl from row 5" in source_of(both)
    train, held_out = split_by_prompt(both, 0.4, seed=0)
    assert "its held-out eval part" in source_of(held_out) and "rows numbered in the part" in source_of(held_out)
    ranked = tmp_path / "ranked.jsonl"
    ranked.write_text(
        json.dumps({"prompt": "Q", "completions": [" a", " b"], "ranks": [1, 0], "scores": [0, 2]}) + "\n"
    )
    args = DataArguments(train_data=str(ranked))
    pairs, _, stats, _ = convert_train_eval(load_data(str(ranked)), None, "pairwise", args)
    assert pairs.to_list() == [{"prompt": "Q", "chosen": " b", "rejected": " a", "margin": 2.0}]
    assert "converted from" in source_of(pairs) and str(ranked) in source_of(pairs) and stats["skipped_invalid"] == {}


def test_eval_only_margin_is_ignored_and_a_missing_one_is_named_early():
    train, evaluation = Dataset.from_list([P]), Dataset.from_list([{**P, "margin": 2.0}])
    args = DataArguments(train_data="x")
    _, aligned, _, _ = convert_train_eval(train, evaluation, "pairwise", args)
    assert "margin" not in aligned.column_names
    with pytest.raises(DataValidationError, match="the train data has a 'margin' column and the eval data has none"):
        convert_train_eval(evaluation, train, "pairwise", args)


def test_the_text_window_is_generous():
    assert text_window(None) is None
    assert text_window(1022) == 1022 * 64 and text_window(10) == 64 * 64
