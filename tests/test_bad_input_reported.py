"""Bad inputs reported by an outside tester as mishandled, each with what rm-trl does now, and the helpers that run
them (files written as given, a tokenizer that records what it is handed).

Part of the bad-input matrix (`tests.bad_inputs.all_cases()`): `tests/test_reliability.py` asserts every outcome and
`scripts/make_reliability_doc.py` writes a row of `docs/reliability.md` per case. No tests here.
"""

from __future__ import annotations

import json
import os

import pyarrow as pa
import pyarrow.parquet as pq

from .bad_inputs import C, Case, K, P, R, with_row

CASES: list[Case] = []


def jsonl(*rows: dict | str) -> bytes:
    """JSON lines; a `str` row is written as given (a hand-made, possibly malformed line)."""
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows).encode()


def write_file(directory: str, case: Case) -> str:
    """The case's file: its bytes as given, or its rows in the format its name says (CSV, Parquet, JSONL)."""
    path = os.path.join(directory, case.file_name)
    if case.file_bytes is not None:
        with open(path, "wb") as f:
            f.write(case.file_bytes)
    elif path.endswith(".parquet"):
        pq.write_table(pa.Table.from_pylist(case.rows), path)
    else:
        with open(path, "wb") as f:
            f.write(jsonl(*case.rows))
    return path


class RecordingTokenizer:
    """Forwards to a tokenizer and keeps every text it is handed: what the model will actually see."""

    def __init__(self, tokenizer):
        self.__dict__.update(inner=tokenizer, texts=[])

    def __call__(self, text, *args, **kwargs):
        self.texts.extend([text] if isinstance(text, str) else text)
        return self.inner(text, *args, **kwargs)

    def __getattr__(self, name: str):
        return getattr(self.inner, name)


# ----- reported by an outside tester: data altered or kept silently -------------------------------------------------
ZW, SKIP = "\u200b\u200b", {"invalid_rows": "skip"}
LOOKALIKES = ['"Hello"', "123", "true", "null"]
K2 = {**K, "prompt": "Other?"}
CASES += [
    Case(
        "JSON-looking text beside one non-text value in a file",
        "pairwise",
        file_bytes=jsonl(*[{**P, "chosen": t} for t in LOOKALIKES], {**P, "chosen": 7}),
        expect=("error", "row 4, field 'chosen': expected text, got int"),
    ),
    Case(
        "JSON-looking text beside one non-text value in a file, skip policy",
        "pairwise",
        options=SKIP,
        file_bytes=jsonl(*[{**P, "chosen": t} for t in LOOKALIKES], {**P, "chosen": 7}),
        expect=("ok", {"rows_out": 4, "skipped_invalid": {"wrong_type": 1}}),
        texts=tuple(LOOKALIKES),
    ),
    Case(
        "CSV cells 'None', 'N/A' and numbers in text columns",
        "pairwise",
        file_name="data.csv",
        file_bytes=b"prompt,chosen,rejected\nQ?,None,N/A\nQ?,42,7\nnull,1.0,NaN\n",
        expect=("ok", {"rows_out": 3}),
        texts=("Q?None", "Q?N/A", "Q?42", "Q?7", "null1.0", "nullNaN"),
    ),
    Case(
        "CSV 'N/A' in a score column",
        "rated",
        file_name="data.csv",
        file_bytes=b"prompt,response,score\nQ?,a,1\nQ?,b,N/A\nQ?,c,2.5\n",
        expect=("error", "row 1, field 'score': expected a number, got 'N/A'"),
    ),
    Case(
        "CSV empty cell in a text column",
        "pairwise",
        file_name="data.csv",
        file_bytes=b"prompt,chosen,rejected\nQ?,,x\n",
        expect=("error", "row 0, field 'chosen': text is empty"),
    ),
    Case(
        "true/false among scores in a file",
        "rated",
        file_bytes=jsonl({**R, "score": 1.5}, {**R, "response": " b", "score": True}),
        expect=("error", "row 1, field 'score': expected a number, got bool True"),
    ),
    Case(
        "response that tokenizes to nothing (zero-width spaces)",
        "pairwise",
        with_row("pairwise", {"chosen": ZW}),
        expect=("error", "row 1, field 'chosen': text tokenizes to no tokens"),
    ),
    Case(
        "response that tokenizes to nothing (control characters)",
        "rated",
        with_row("rated", {"response": "\x00\x07"}),
        expect=("error", "row 1, field 'response': text tokenizes to no tokens"),
    ),
    Case(
        "completion that tokenizes to nothing, skip policy",
        "ranked",
        with_row("ranked", {"completions": [" best", ZW, " worst"]}),
        SKIP,
        expect=("ok", {"rows_out": 1, "skipped_invalid": {"empty": 1}}),
    ),
    Case(
        "score beyond float32 (1e39)",
        "rated",
        with_row("rated", {"score": 1e39}),
        expect=("error", "row 1, field 'score': value 1e+39 does not fit in float32"),
    ),
    Case(
        "score 1e41",
        "rated",
        with_row("rated", {"score": -1e41}),
        expect=("error", "row 1, field 'score': value -1e+41 does not fit in float32"),
    ),
    Case(
        "margin beyond float32",
        "pairwise",
        [{**P, "margin": 1.0}, {**P, "chosen": " x", "margin": 1e39}],
        expect=("error", "row 1, field 'margin': value 1e+39 does not fit in float32"),
    ),
    Case(
        "ranks given as strings",
        "ranked",
        [{**K, "ranks": ["0", "1", "2"]}],
        expect=("error", "row 0, field 'ranks': ranks must be numbers, got str '0'"),
    ),
    Case(
        "ranks given as strings in one row of a file",
        "ranked",
        file_bytes=jsonl(K, {**K2, "ranks": ["0", "1", "2"]}, K2),
        expect=("error", "row 1, field 'ranks': expected a list of numbers, got list"),
    ),
    Case(
        "conversational data whose row 0 has no chosen",
        "conversational",
        [{**C, "chosen": None}, C],
        SKIP,
        expect=("ok", {"rows_out": 1, "skipped_invalid": {"missing": 1}}),
    ),
    Case(
        "conversational file with one plain-text row",
        "conversational",
        file_bytes=jsonl({**C, "chosen": "plain"}, C, {**C, "rejected": [{"role": "assistant", "content": "no"}]}),
        expect=("error", "row 0, field 'chosen': expected a list of objects, got str"),
    ),
]

# ----- the conversion path validates rows in their source format ------------------------------------------------
RATED_GROUP = [{**R, "response": " a", "score": 1.0}, {**R, "response": " b", "score": 2.0}]
CASES += [
    Case(
        "ranked -> pairwise: 2 ranks for 3 completions",
        "pairwise",
        with_row("ranked", {"ranks": [0, 1]}),
        convert_from="ranked",
        expect=("error", "row 1, field 'ranks': 2 ranks for 3 completions"),
    ),
    Case(
        "ranked -> pairwise: NaN rank",
        "pairwise",
        with_row("ranked", {"ranks": [0, float("nan"), 1]}),
        convert_from="ranked",
        expect=("error", "row 1, field 'ranks': ranks must be finite"),
    ),
    Case(
        "ranked -> pairwise: K = 1",
        "pairwise",
        with_row("ranked", {"completions": [" only"], "ranks": [0]}),
        convert_from="ranked",
        expect=("error", "row 1, field 'completions': need K >= 2 completions, got 1"),
    ),
    Case(
        "rated -> pairwise: score given as text",
        "pairwise",
        file_bytes=jsonl(*RATED_GROUP, {**R, "response": " c", "score": "high"}),
        convert_from="rated",
        expect=("error", "row 2, field 'score': expected a number, got str 'high'"),
    ),
    Case(
        "ranked -> pairwise: invalid row, skip policy",
        "pairwise",
        with_row("ranked", {"ranks": [0, 1]}),
        SKIP,
        convert_from="ranked",
        expect=("ok", {"rows_out": 3, "converted": {"skipped_invalid": {"length_mismatch": 1}, "rows_out": 3}}),
    ),
    Case(
        "ranked -> pairwise: every row invalid, skip policy",
        "pairwise",
        [{**K, "ranks": [0, 0, 0]}, {**K2, "ranks": None}],
        SKIP,
        convert_from="ranked",
        expect=("error", "all 2 rows of the ranked data are invalid"),
    ),
    Case(
        "eval file with a 'margin' column the train file lacks",
        "pairwise",
        [P],
        eval_rows=[{**P, "margin": 1.0}],
        expect=("ok", {"rows_out": 1, "note": "ignoring the 'margin' column of the eval data"}),
    ),
    Case(
        "train file with a 'margin' column, eval file without",
        "pairwise",
        [{**P, "margin": 1.0}],
        eval_rows=[P],
        expect=("error", "the train data has a 'margin' column and the eval data has none"),
    ),
]

# ----- crashes that are now messages -----------------------------------------------------------------------------
ALL_BAD = {
    "pairwise": {**P, "chosen": None},
    "rated": {**R, "response": None},
    "ranked": {**K, "ranks": None},
    "conversational": {**C, "chosen": []},
}
CASES += [
    Case("every row invalid, skip policy", fmt, [bad, bad], SKIP, expect=("error", "all 2 rows of the train data"))
    for fmt, bad in ALL_BAD.items()
]
DEEP = '{"prompt": "Q", "chosen": ' + "[" * 100_000 + "]" * 100_000 + ', "rejected": " b"}'
CASES += [
    Case(
        "NaN rank",
        "ranked",
        with_row("ranked", {"ranks": [0, float("nan"), 1]}),
        expect=("error", "row 1, field 'ranks': ranks must be finite"),
    ),
    Case(
        "infinite rank",
        "ranked",
        with_row("ranked", {"ranks": [0, float("inf"), 1]}),
        expect=("error", "row 1, field 'ranks': ranks must be finite"),
    ),
    Case("empty file", "pairwise", file_bytes=b"", expect=("error", "data.jsonl holds no rows")),
    Case("whitespace-only file", "pairwise", file_bytes=b"\n  \n\t\n", expect=("error", "data.jsonl holds no rows")),
    Case(
        "empty CSV file", "pairwise", file_name="data.csv", file_bytes=b"", expect=("error", "data.csv holds no rows")
    ),
    Case(
        "CSV file with a header and no rows",
        "pairwise",
        file_name="data.csv",
        file_bytes=b"prompt,chosen,rejected\n",
        expect=("error", "data.csv holds no rows"),
    ),
    Case(
        "deeply nested JSON line",
        "pairwise",
        file_bytes=jsonl(P, DEEP),
        expect=("error", "line 2 (row 1): nested too deeply"),
    ),
    Case(
        "two JSON objects on one line",
        "pairwise",
        file_bytes=jsonl(P, json.dumps(P) + " " + json.dumps(P), P),
        expect=("error", "line 2 (row 1): not valid JSON (Extra data"),
    ),
    Case(
        "duplicate keys in a JSON object",
        "pairwise",
        file_bytes=jsonl(P, '{"prompt": "Q", "chosen": " a", "chosen": " b", "rejected": " c"}'),
        expect=("error", "line 2 (row 1): key 'chosen' appears twice"),
    ),
    Case(
        "a lone surrogate in a JSON string",
        "pairwise",
        file_bytes=jsonl(P, '{"prompt": "Q", "chosen": " a\\ud800", "rejected": " c"}'),
        expect=("error", "line 2 (row 1), field 'chosen': text holds a lone surrogate"),
    ),
    Case(
        "a 5 MB line (one over-long response)",
        "pairwise",
        {"max_length": 48},
        file_bytes=jsonl(P, {**P, "chosen": " word" * 1_000_000}),
        expect=("ok", {"rows_out": 2, "truncated": {"response_truncated": 1}}),
        max_text_chars=20_000,
    ),
    Case(
        "a 5 MB prompt (its end is what the model sees)",
        "rated",
        {"max_length": 48},
        file_bytes=jsonl(R, {**R, "prompt": "Q " * 2_500_000 + "END-OF-PROMPT"}),
        expect=("ok", {"rows_out": 2, "truncated": {"prompt_truncated": 1}}),
        texts=("END-OF-PROMPT an answer",),
        max_text_chars=20_000,
    ),
]

# ----- `rm-trl score`: every scorable row scored, the rest marked row by row; training-only rules off ----------------
CASES += [
    Case(f"rm-trl score: {name}", fmt, rows, purpose="score", expect=("ok", {"rows_out": scored, "marked": marked}))
    for name, fmt, rows, scored, marked in [
        ("all completions tied", "ranked", with_row("ranked", {"ranks": [0, 0, 0]}), 2, {}),
        ("completions identical once tokenized (uncased)", "ranked", [{**K, "completions": [" Yes", " yes"]}], 1, {}),
        ("chosen == rejected", "pairwise", with_row("pairwise", {"rejected": P["chosen"]}), 2, {}),
        ("duplicate and conflicting rows", "pairwise", [P, P, {**P, "chosen": " b", "rejected": " a"}], 3, {}),
        ("NaN ranks are not read", "ranked", with_row("ranked", {"ranks": [0, float("nan"), 1]}), 2, {}),
        ("one invalid row", "pairwise", with_row("pairwise", {"chosen": "  "}), 1, {1: "field 'chosen': text is"}),
        ("response that tokenizes to nothing", "rated", with_row("rated", {"response": ZW}), 1, {1: "no tokens"}),
        ("every row invalid", "rated", [{**R, "response": ""}, {**R, "response": None}], 0, {0: "'response'"}),
    ]
]
