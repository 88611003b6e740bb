"""The bad-input matrix: every kind of bad row, for every format, and what rm-trl does with it.

Shared by `tests/test_reliability.py` (which asserts each outcome) and `scripts/make_reliability_doc.py` (which
runs the same cases and writes `docs/reliability.md` from what actually happened).
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from typing import Any

from datasets import Dataset

from rm_trl.data import DataArguments, DataLoadError, DataValidationError, load_data, prepare_dataset
from rm_trl.data.converters import align_eval_targets, convert_for
from rm_trl.data.formats import SCHEMAS
from rm_trl.data.pipeline import prepare_for_scoring

P = {"prompt": "Q?", "chosen": " a good answer", "rejected": " a bad answer"}
R = {"prompt": "Q?", "response": " an answer", "score": 3.0}
K = {"prompt": "Q?", "completions": [" best", " middle", " worst"], "ranks": [0, 1, 2]}
C = {
    "prompt": [{"role": "user", "content": "Q?"}],
    "chosen": [{"role": "assistant", "content": "a good answer"}],
    "rejected": [{"role": "assistant", "content": "a bad answer"}],
}
LONG = "Q " + "word " * 200
SEP = "<|step|>"  # stepwise rows: the tokenizer gets it as a special token, as the stepwise trainer adds it
S = {"prompt": "Q?", "completions": [" step one.", " step two."], "labels": [True, False]}
MS = {"input": "Q? Step 1: one. ки Step 2: two. ки", "label": "Q? Step 1: one. + Step 2: two. -"}
PRM = {"prompt": "Q?", "completions": [" step one.", " step two."], "ratings": [1, -1]}


@dataclass
class Case:
    """One bad input. `expect` is ("error", text in the message) or ("ok", {report field: expected counts})."""

    name: str
    format: str  # pairwise, rated, ranked, conversational
    rows: list[dict] | None = None
    options: dict[str, Any] = field(default_factory=dict)
    expect: tuple[str, Any] = ("ok", {})
    file_bytes: bytes | None = None  # the case is a file on disk instead of in-memory rows
    file_name: str = "data.jsonl"  # rows are written to a file of this name when it is not .jsonl
    convert_from: str | None = None  # the rows are in this format and converted to `format` first
    purpose: str = "train"  # "score": prepared as `rm-trl score` prepares its input
    eval_rows: list[dict] | None = None  # a separate eval split (train and eval columns are compared)
    texts: tuple[str, ...] = ()  # texts that must reach the tokenizer exactly as written
    max_text_chars: int | None = None  # the longest text the tokenizer may be handed


def good(fmt: str) -> dict:
    return {
        "pairwise": P,
        "rated": R,
        "ranked": K,
        "conversational": C,
        "stepwise": S,
        "math_shepherd": MS,
        "prm800k": PRM,
    }[fmt]


def with_row(fmt: str, bad: dict, drop: tuple[str, ...] = ()) -> list[dict]:
    row = {**good(fmt), **bad}
    for key in drop:
        row.pop(key)
    return [dict(good(fmt)), row]


# Per format: the field a text case targets, and how to write an empty / whitespace / wrong-typed / None value there.
TEXT_CASES = {
    "pairwise": ("chosen", "", "  \n\t ", 7, None),
    "rated": ("response", "", "  \n\t ", 7, None),
    "ranked": ("completions", [" best", "", " worst"], [" best", "  \t", " worst"], [1, 2, 3], None),
}
ERROR_FIELD = {"pairwise": "chosen", "rated": "response", "ranked": "completions[1]"}

CASES: list[Case] = []
for fmt in ("pairwise", "rated", "ranked", "conversational"):
    required = {"pairwise": "rejected", "rated": "score", "ranked": "ranks", "conversational": "rejected"}[fmt]
    long_prompt = [{"role": "user", "content": LONG}] if fmt == "conversational" else LONG
    CASES += [
        Case(
            f"missing column '{required}'",
            fmt,
            [{k: v for k, v in good(fmt).items() if k != required}],
            expect=("error", f"missing ['{required}']"),
        ),
        Case(
            "extra column",
            fmt,
            [{**good(fmt), "source": "web"}],
            expect=("ok", {"rows_out": 1, "flagged_kept": {}}),
        ),
        Case(
            "duplicate rows", fmt, [good(fmt), good(fmt), good(fmt)], expect=("ok", {"flagged_kept": {"duplicate": 2}})
        ),
        Case(
            "duplicate rows, drop policy",
            fmt,
            [good(fmt), good(fmt)],
            {"duplicate_rows": "drop"},
            expect=("ok", {"dropped": {"duplicate": 1}, "rows_out": 1}),
        ),
        Case(
            "over-length row (default: prompt cut from the left)",
            fmt,
            with_row(fmt, {"prompt": long_prompt}),
            {"max_length": 48},
            expect=("ok", {"truncated": {"prompt_truncated": 1}, "rows_out": 2}),
        ),
        Case(
            "over-length row, drop policy",
            fmt,
            with_row(fmt, {"prompt": long_prompt}),
            {"max_length": 48, "truncation": "drop"},
            expect=("ok", {"dropped": {"overlength": 1}, "rows_out": 1}),
        ),
        Case(
            "over-length row, error policy",
            fmt,
            with_row(fmt, {"prompt": long_prompt}),
            {"max_length": 48, "truncation": "error"},
            expect=("error", "do not fit in max_length=48"),
        ),
        Case("empty dataset", fmt, [], expect=("error", "dataset is empty")),
    ]
    if fmt == "conversational":
        continue
    field_name, empty, blank, wrong, none = TEXT_CASES[fmt]
    CASES += [
        Case(
            f"empty text in '{field_name}'",
            fmt,
            with_row(fmt, {field_name: empty}),
            expect=("error", f"row 1, field '{ERROR_FIELD[fmt]}'"),
        ),
        Case(
            f"whitespace-only text in '{field_name}'",
            fmt,
            with_row(fmt, {field_name: blank}),
            expect=("error", f"row 1, field '{ERROR_FIELD[fmt]}'"),
        ),
        Case(
            f"wrong type in '{field_name}' (numbers)",
            fmt,
            [{**good(fmt), field_name: wrong}],
            expect=("error", "expected text, got int"),
        ),
        Case(
            f"None in '{field_name}'",
            fmt,
            with_row(fmt, {field_name: none}),
            expect=("error", f"row 1, field '{field_name}'"),
        ),
        Case(
            f"None in '{field_name}', skip policy",
            fmt,
            with_row(fmt, {field_name: none}),
            {"invalid_rows": "skip"},
            expect=("ok", {"rows_out": 1, "rows_in": 2}),
        ),
    ]

CASES += [
    # pairwise
    Case(
        "chosen == rejected",
        "pairwise",
        with_row("pairwise", {"rejected": " a good answer"}),
        expect=("error", "chosen and rejected responses are identical"),
    ),
    Case(
        "NaN margin",
        "pairwise",
        [{**P, "margin": 1.0}, {**P, "chosen": " x", "margin": float("nan")}],
        expect=("error", "row 1, field 'margin': value nan is not finite"),
    ),
    Case(
        "conflicting labels (A > B and B > A)",
        "pairwise",
        [P, {**P, "chosen": P["rejected"], "rejected": P["chosen"]}],
        expect=("ok", {"flagged_kept": {"conflicting": 2}}),
    ),
    Case(
        "conflicting labels, drop policy",
        "pairwise",
        [P, {**P, "chosen": P["rejected"], "rejected": P["chosen"]}, {**P, "prompt": "Other?"}],
        {"conflicting_rows": "drop"},
        expect=("ok", {"dropped": {"conflicting": 2}, "rows_out": 1}),
    ),
    Case(
        "conflicting labels, error policy",
        "pairwise",
        [P, {**P, "chosen": P["rejected"], "rejected": P["chosen"]}],
        {"conflicting_rows": "error"},
        expect=("error", "different labels"),
    ),
    Case(
        "identical after truncation (keep_start)",
        "pairwise",
        with_row("pairwise", {"chosen": " same start " * 30 + "good", "rejected": " same start " * 30 + "bad"}),
        {"max_length": 48, "truncation": "keep_start"},
        expect=("ok", {"dropped": {"identical_after_truncation": 1}, "rows_out": 1}),
    ),
    # rated
    Case("NaN score", "rated", with_row("rated", {"score": float("nan")}), expect=("error", "no score given")),
    Case(
        "infinite score",
        "rated",
        with_row("rated", {"score": float("inf")}),
        expect=("error", "row 1, field 'score': value inf is not finite"),
    ),
    Case(
        "out-of-range label for BCE",
        "rated",
        [{**R, "score": 1.0}, {**R, "response": " other", "score": 0.4}],
        {"binary_labels": True},
        expect=("error", "row 1, field 'score': binary labels must be 0 or 1, got 0.4"),
    ),
    Case(
        "wrong type in 'score' (text)",
        "rated",
        [{**R, "score": "high"}],
        expect=("error", "row 0, field 'score': expected a number, got str"),
    ),
    Case(
        "conflicting scores for one response",
        "rated",
        [R, {**R, "score": 1.0}],
        expect=("ok", {"flagged_kept": {"conflicting": 2}}),
    ),
    # ranked
    Case(
        "ranks not a ranking (1-based)",
        "ranked",
        with_row("ranked", {"ranks": [1, 2, 3]}),
        expect=("error", "the best completion has rank 0"),
    ),
    Case(
        "ranks not a ranking (negative)",
        "ranked",
        with_row("ranked", {"ranks": [0, -1, 2]}),
        expect=("error", "ranks must be integers >= 0"),
    ),
    Case(
        "ranks not a ranking (fractional)",
        "ranked",
        with_row("ranked", {"ranks": [0, 0.5, 1]}),
        expect=("error", "ranks must be integers >= 0"),
    ),
    Case(
        "ranks and completions differ in length",
        "ranked",
        with_row("ranked", {"ranks": [0, 1]}),
        expect=("error", "2 ranks for 3 completions"),
    ),
    Case(
        "K < 2",
        "ranked",
        with_row("ranked", {"completions": [" only"], "ranks": [0]}),
        expect=("error", "need K >= 2 completions"),
    ),
    Case(
        "all completions tied",
        "ranked",
        with_row("ranked", {"ranks": [0, 0, 0]}),
        expect=("error", "all completions share one rank"),
    ),
    Case(
        "one completion given two ranks",
        "ranked",
        with_row("ranked", {"completions": [" a", " a", " b"]}),
        expect=("error", "two different ranks"),
    ),
    Case(
        "conflicting rankings of one list",
        "ranked",
        [K, {**K, "ranks": [2, 1, 0]}],
        expect=("ok", {"flagged_kept": {"conflicting": 2}}),
    ),
    # conversational
    Case(
        "unknown role",
        "conversational",
        with_row("conversational", {"chosen": [{"role": "robot", "content": "hi"}]}),
        expect=("error", "row 1, field 'chosen[0]': unknown role 'robot'"),
    ),
    Case(
        "message without content",
        "conversational",
        with_row("conversational", {"chosen": [{"role": "assistant"}]}),
        expect=("error", "message has no text 'content'"),
    ),
    Case(
        "last message not from the assistant",
        "conversational",
        with_row("conversational", {"chosen": [{"role": "user", "content": "hi"}]}),
        expect=("error", "last message must be from the assistant"),
    ),
    Case(
        "empty final message",
        "conversational",
        with_row("conversational", {"rejected": [{"role": "assistant", "content": "   "}]}),
        expect=("error", "the final message is empty"),
    ),
    Case(
        "empty message list",
        "conversational",
        with_row("conversational", {"chosen": []}),
        expect=("error", "message list is empty"),
    ),
    # files
    Case(
        "non-UTF-8 bytes in a file",
        "pairwise",
        file_bytes=(json.dumps(P) + "\n").encode() + b'{"prompt": "Q", "chosen": " caf\xe9", "rejected": " x"}\n',
        expect=("error", "not valid UTF-8: byte"),
    ),
    Case(
        "a field changing type between rows of a file",
        "rated",
        file_bytes=(json.dumps(R) + "\n" + json.dumps({**R, "score": "high"}) + "\n").encode(),
        expect=("error", "row 1, field 'score': expected a number, got str"),
    ),
    Case(
        "a text field changing to a list in a file",
        "pairwise",
        file_bytes=(json.dumps(P) + "\n" + json.dumps({**P, "chosen": ["a", "b"]}) + "\n").encode(),
        expect=("error", "row 1, field 'chosen': expected text, got list"),
    ),
    Case(
        "invalid JSON line in a file",
        "pairwise",
        file_bytes=(json.dumps(P) + "\n{not json}\n").encode(),
        expect=("error", "line 2 (row 1): not valid JSON"),
    ),
]

# stepwise rows (process supervision, docs/process_rewards.md): each problem names the row and the step
LONG_STEPS = {"prompt": "Q?", "completions": [f" step {i} is a fine step." for i in range(12)], "labels": [True] * 12}
CASES += [
    Case(
        "missing column 'labels'",
        "stepwise",
        [{"prompt": "Q?", "completions": [" a."]}],
        expect=("error", "missing ['labels']"),
    ),
    Case(
        "empty step",
        "stepwise",
        with_row("stepwise", {"completions": [" a.", " "]}),
        expect=("error", "row 1, field 'completions[1]': step is empty"),
    ),
    Case(
        "empty step, skip policy",
        "stepwise",
        with_row("stepwise", {"completions": ["", " b."]}),
        {"invalid_rows": "skip"},
        expect=("ok", {"skipped_invalid": {"empty": 1}, "rows_out": 1}),
    ),
    Case(
        "step text holding the step separator",
        "stepwise",
        with_row("stepwise", {"completions": [f" a{SEP}b", " c."]}),
        expect=("error", "row 1, field 'completions[0]': step contains the step separator"),
    ),
    Case(
        "a step that is not text in a file",
        "stepwise",
        file_bytes=(json.dumps(S) + "\n" + json.dumps({**S, "completions": [" a.", 7]}) + "\n").encode(),
        expect=("error", "row 1, field 'completions'"),
    ),
    Case(
        "label count differs from step count",
        "stepwise",
        with_row("stepwise", {"labels": [True]}),
        expect=("error", "row 1, field 'labels': 1 labels for 2 steps"),
    ),
    Case(
        "label that is not a bool, a number in [0, 1] or null",
        "stepwise",
        with_row("stepwise", {"labels": [1.0, 2.0]}),
        expect=("error", "row 1, field 'labels[1]': expected true / false, a number in [0, 1] or null"),
    ),
    Case(
        "label that is text, in a file",
        "stepwise",
        file_bytes=(json.dumps(S) + "\n" + json.dumps({**S, "labels": ["yes", "no"]}) + "\n").encode(),
        expect=("error", "row 1, field 'labels"),
    ),
    Case(
        "every step masked (null)",
        "stepwise",
        with_row("stepwise", {"labels": [None, None]}),
        expect=("error", "row 1, field 'labels': every step is masked"),
    ),
    Case(
        "label after the first error, after_first_error=error",
        "stepwise",
        with_row("stepwise", {"labels": [False, True]}),
        {"after_first_error": "error"},
        expect=("error", "row 1, field 'labels[1]': step 1 is labelled after the first error (step 0)"),
    ),
    Case(
        "steps after the first error, after_first_error=truncate",
        "stepwise",
        with_row("stepwise", {"labels": [False, True]}),
        {"after_first_error": "truncate"},
        expect=("ok", {"steps_dropped": {"after_first_error": 1}, "rows_out": 2}),
    ),
    Case(
        "over-length row: whole steps dropped from the end",
        "stepwise",
        [S, LONG_STEPS],
        {"max_length": 48},
        expect=("ok", {"truncated": {"steps_dropped": 1}, "steps_dropped": {"overlength": 7}, "rows_out": 2}),
    ),
    Case(
        "over-length row where not even one step fits",
        "stepwise",
        with_row("stepwise", {"prompt": LONG}),
        {"max_length": 48},
        expect=("ok", {"dropped": {"overlength": 1}, "rows_out": 1}),
    ),
    Case(
        "over-length row where not even one step fits, error policy",
        "stepwise",
        with_row("stepwise", {"prompt": LONG}),
        {"max_length": 48, "truncation": "error"},
        expect=("error", "do not fit in max_length=48"),
    ),
    Case("duplicate rows", "stepwise", [S, S, S], expect=("ok", {"flagged_kept": {"duplicate": 2}})),
    Case(
        "the same steps with different labels",
        "stepwise",
        with_row("stepwise", {"labels": [True, True]}),
        expect=("ok", {"flagged_kept": {"conflicting": 2}, "rows_out": 2}),
    ),
    Case(
        "Math-Shepherd label text differing from the input",
        "stepwise",
        [MS, {**MS, "label": MS["label"].replace("two.", "2.")}],
        convert_from="math_shepherd",
        expect=("error", "row 1, field 'label (step 1)': the label text differs from the input"),
    ),
    Case(
        "Math-Shepherd tag without a + / - label",
        "stepwise",
        [MS, {**MS, "label": MS["label"].replace("-", "?")}],
        convert_from="math_shepherd",
        expect=("error", "row 1, field 'label (step 1)': expected '+' or '-'"),
    ),
    Case(
        "Math-Shepherd text after the last tag",
        "stepwise",
        [MS, {"input": MS["input"] + " Step 3: x.", "label": MS["label"] + " Step 3: x."}],
        {"invalid_rows": "skip"},
        convert_from="math_shepherd",
        expect=("ok", {"converted": {"skipped_invalid": {"unlabelled_step": 1}}, "rows_out": 1}),
    ),
    Case(
        "PRM800K rating outside -1 / 0 / 1",
        "stepwise",
        [PRM, {**PRM, "ratings": [1, 2]}],
        convert_from="prm800k",
        expect=("error", "row 1, field 'ratings[1]': expected a rating -1, 0, 1 or null"),
    ),
    Case(
        "PRM800K neutral ratings, neutral_rating=masked (default)",
        "stepwise",
        [PRM, {**PRM, "ratings": [0, 0]}],
        convert_from="prm800k",
        expect=("error", "row 1, field 'labels': every step is masked"),
    ),
]


def all_cases() -> list[Case]:
    """The whole matrix: the cases above, then those an outside tester reported (imported here: no cycle)."""
    from .test_bad_input_reported import CASES as reported

    return CASES + reported


def run_case(case: Case, tokenizers: dict[str, Any]) -> tuple[str, Any]:
    """Run one case through loading, conversion and `prepare_dataset` (or the scoring preparation); return
    ("error", message) or ("ok", report dict + the texts the tokenizer was handed)."""
    from .test_bad_input_reported import RecordingTokenizer, write_file

    options = dict(case.options)
    keys = ("max_length", "truncation", "invalid_rows", "duplicate_rows", "conflicting_rows")
    prepare_options = {k: options.pop(k) for k in keys if k in options}
    kind = "pairwise" if case.format == "conversational" else case.format
    tokenizer = RecordingTokenizer(tokenizers["chat" if case.format == "conversational" else "plain"])
    if kind == "stepwise":  # a decoder whose tokenizer holds the step separator, without EOS (the stepwise default)
        inner = copy.deepcopy(tokenizers["chat"])
        inner.add_special_tokens({"additional_special_tokens": [SEP]})
        tokenizer = RecordingTokenizer(inner)
    max_length = prepare_options.get("max_length", 128)
    invalid_rows = prepare_options.get("invalid_rows", "error")
    detail: dict[str, Any] = {}
    tmp = tempfile.mkdtemp()
    try:
        if case.file_bytes is not None or case.file_name != "data.jsonl":
            dataset = load_data(write_file(tmp, case))
        else:
            source = case.convert_from or case.format
            empty = {k: [] for k in good(source)}
            dataset = Dataset.from_list(case.rows) if case.rows else Dataset.from_dict(empty)
        if case.convert_from:
            args = DataArguments(train_data="x", source_format=case.convert_from, **options.pop("source", {}))
            dataset, detail["converted"] = convert_for(dataset, kind, args, invalid_rows=invalid_rows)
        if case.eval_rows is not None:
            dataset, detail["note"] = align_eval_targets(dataset, Dataset.from_list(case.eval_rows))
        if case.purpose == "score":
            prepared = prepare_for_scoring(dataset, kind, tokenizer, max_length=max_length, append_eos=None)
            detail["marked"] = prepared.not_kept
        else:
            prepared = prepare_dataset(
                dataset,
                SCHEMAS[kind],
                tokenizer,
                split="train",
                max_length=max_length,
                truncation=prepare_options.get("truncation", "truncate_prompt"),
                invalid_rows=invalid_rows,
                append_eos=False if kind == "stepwise" else None,
                duplicate_rows=prepare_options.get("duplicate_rows", "keep"),
                conflicting_rows=prepare_options.get("conflicting_rows", "keep"),
                parse_options={"turn_markers": ("\n\nAssistant:",), **options},
            )
    except (DataValidationError, DataLoadError) as exc:
        return "error", str(exc).replace(tmp + os.sep, "")  # name the file, not the temporary folder
    finally:
        shutil.rmtree(tmp)
    return "ok", {**prepared.report.to_dict(), **detail, "purpose": case.purpose, "texts": tokenizer.texts}
