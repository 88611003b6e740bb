"""Fuzz the whole input path: JSONL / CSV / Parquet files -> rm-trl's readers -> validation, format conversion,
tokenization for training and for `rm-trl score`. Whatever the rows hold, every text reaches the tokenizer exactly
as the file holds it, every row is kept or counted, and the outcome is either a counted result (exit status 0) or
one of rm-trl's own errors (exit status 1): never another exception, never a silently altered text."""

from __future__ import annotations

import csv
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from transformers import AutoTokenizer

from rm_trl.data import DataArguments, load_data, prepare_dataset
from rm_trl.data.columns import restore_row
from rm_trl.data.converters import convert_for
from rm_trl.data.formats import SCHEMAS
from rm_trl.data.pipeline import ROW, prepare_for_scoring
from rm_trl.errors import user_error_types

from .test_bad_input_reported import RecordingTokenizer

TEXT_FIELDS = {"pairwise": ("prompt", "chosen", "rejected"), "rated": ("prompt", "response"), "ranked": ("prompt",)}
TRICKY = ['"Hello"', "123", "true", "null", "None", "N/A", "NaN", "1e41", "", " ", "\u200b", "\x07", "a,b", 'say "hi"']
TRICKY += ["two\nlines", "cr\r\nlf", "tab\t", "é", "😀", "[1, 2]", '{"a": 1}', "\\u0041", "  padded  "]
text = st.one_of(
    st.sampled_from(TRICKY), st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=8)
)
odd = st.one_of(st.none(), st.integers(-3, 3), st.booleans(), st.lists(text, max_size=2))  # not text
maybe_text = st.one_of(text, text, text, odd)
number = st.one_of(st.integers(-5, 5), st.floats(-10, 10), st.none(), st.sampled_from([1e39, "high", "3", True]))


def prepare_for_training(data, kind: str, recorder, **options):
    """The training preparation both fuzz tests drive: skip policy, prompts cut from the left, 512 tokens."""
    return prepare_dataset(
        data,
        SCHEMAS[kind],
        recorder,
        split="train",
        max_length=512,
        truncation="truncate_prompt",
        invalid_rows="skip",
        append_eos=None,
        **options,
    )


def rows_of(kind: str) -> st.SearchStrategy[list[dict]]:
    if kind == "pairwise":
        row = st.fixed_dictionaries({"prompt": text, "chosen": maybe_text, "rejected": maybe_text})
    elif kind == "rated":
        row = st.fixed_dictionaries({"prompt": st.sampled_from(["Q1", "Q2"]), "response": maybe_text, "score": number})
    else:
        ranks = st.one_of(st.lists(st.integers(0, 3), min_size=1, max_size=4), st.just(["0", "1"]), st.none())
        row = st.fixed_dictionaries(
            {"prompt": text, "completions": st.lists(maybe_text, min_size=1, max_size=4), "ranks": ranks}
        )
    return st.lists(row, min_size=1, max_size=5)


def write(rows: list[dict], directory, suffix: str) -> str:
    path = str(directory / f"data{suffix}")
    if suffix == ".jsonl":
        with open(path, "w", encoding="utf-8") as f:
            f.writelines(json.dumps(r) + "\n" for r in rows)
    elif suffix == ".csv":
        with open(path, "w", encoding="utf-8", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows({k: "" if v is None else v for k, v in r.items()} for r in rows)
    else:
        try:
            pq.write_table(pa.Table.from_pylist(rows), path)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            assume(False)  # Parquet cannot hold rows whose types differ: no such file exists
    return path


def as_written(rows: list[dict], suffix: str) -> list[dict]:
    """The rows as the file holds them: CSV holds every value as text."""
    if suffix != ".csv":
        return rows
    return [{k: "" if v is None else str(v) for k, v in r.items()} for r in rows]


def outcome(run) -> tuple[int, object]:
    """(exit status, result) the way rm-trl's entry points report it: 0 and the result, or 1 for a user error."""
    try:
        return 0, run()
    except user_error_types() as exc:
        return 1, exc


def assert_texts_reached_tokenizer(prepared, rows: list[dict], kind: str, seen: set[str]) -> None:
    """Every kept row's prompt, and prompt + each response, was handed to the tokenizer exactly as written."""
    for row_number in prepared.dataset[ROW]:
        row = rows[row_number]
        responses = {"pairwise": ["chosen", "rejected"], "rated": ["response"]}.get(kind)
        texts = [row[f] for f in responses] if responses else row["completions"]
        assert row["prompt"] in seen, (row_number, row["prompt"])
        for response in texts:
            assert row["prompt"] + response in seen, (row_number, row["prompt"], response)


@pytest.fixture(scope="module")
def tokenizer(minilm_path):
    return AutoTokenizer.from_pretrained(minilm_path)


SUFFIXES = [".jsonl", ".csv", ".parquet"]
FUZZ = settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))


@FUZZ
@given(data=st.data(), kind=st.sampled_from(["pairwise", "rated", "ranked"]), suffix=st.sampled_from(SUFFIXES))
def test_fuzz_readers_training_and_scoring_keep_text_exact(tmp_path_factory, tokenizer, data, kind, suffix):
    if kind == "ranked" and suffix == ".csv":
        suffix = ".jsonl"  # CSV holds no lists
    rows = data.draw(rows_of(kind))
    path = write(rows, tmp_path_factory.mktemp("fuzz"), suffix)
    written = as_written(rows, suffix)

    loaded = load_data(path)  # a file rm-trl's own writer-side made is always readable
    assert len(loaded) == len(rows)
    for got, want in zip(loaded, written):
        got = restore_row(got)
        for field in TEXT_FIELDS[kind]:
            assert got[field] == want[field], (field, got[field], want[field])
        if kind == "ranked" and isinstance(want["completions"], list):
            assert got["completions"] == want["completions"]

    recorder = RecordingTokenizer(tokenizer)
    status, prepared = outcome(lambda: prepare_for_training(loaded, kind, recorder, parse_options={"turn_markers": ()}))
    if status == 0:
        report = prepared.report
        assert report.rows_out + sum(report.invalid.values()) + sum(report.dropped.values()) == len(rows)
        assert_texts_reached_tokenizer(prepared, written, kind, set(recorder.texts))
    else:
        assert "row" in str(prepared) or "no usable rows" in str(prepared), prepared

    recorder = RecordingTokenizer(tokenizer)
    status, prepared = outcome(lambda: prepare_for_scoring(loaded, kind, recorder, max_length=512, append_eos=None))
    assert status == 0, prepared  # a readable file is always scored: bad rows are marked, not raised
    assert prepared.report.rows_out + len(prepared.not_kept) == len(rows)
    assert all("field '" in why or "dropped" in why for why in prepared.not_kept.values()), prepared.not_kept
    assert_texts_reached_tokenizer(prepared, written, kind, set(recorder.texts))


@FUZZ
@given(data=st.data(), source=st.sampled_from(["rated", "ranked"]), policy=st.sampled_from(["skip", "error"]))
def test_fuzz_conversion_validates_and_keeps_text_exact(tmp_path_factory, tokenizer, data, source, policy):
    rows = data.draw(rows_of(source))
    path = write(rows, tmp_path_factory.mktemp("fuzz"), ".jsonl")
    args = DataArguments(train_data=path, source_format=source)
    status, converted = outcome(lambda: convert_for(load_data(path), "pairwise", args, invalid_rows=policy))
    if status == 1:
        assert "row" in str(converted) or "no pairs" in str(converted) or "no prompt" in str(converted), converted
        return
    pairs, stats = converted
    if policy == "error":
        assert not stats["skipped_invalid"]
    if source == "rated":
        texts = {r["response"] for r in rows if isinstance(r["response"], str)}
    else:
        texts = {c for r in rows for c in r["completions"] if isinstance(c, str)}
    prompts = {r["prompt"] for r in rows}
    assert all(p["prompt"] in prompts and {p["chosen"], p["rejected"]} <= texts for p in pairs)

    recorder = RecordingTokenizer(tokenizer)
    status, prepared = outcome(lambda: prepare_for_training(pairs, "pairwise", recorder))
    if status == 0:
        assert_texts_reached_tokenizer(prepared, pairs.to_list(), "pairwise", set(recorder.texts))
