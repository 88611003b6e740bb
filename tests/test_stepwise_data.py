"""The stepwise data layer (issue #15, docs/process_rewards.md): the format's row checks, its source formats
(Math-Shepherd, PRM800K), reward positions at the step separators, over-length step dropping, prefixes for encoders,
grouping solutions by prompt, and what the collators carry (`position_counts`, per-position labels)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from datasets import Dataset
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from transformers import AutoTokenizer

from rm_trl.data import DataArguments, DataValidationError, prepare_dataset
from rm_trl.data.collators import RewardDataCollator
from rm_trl.data.converters import convert_for
from rm_trl.data.formats import FORMATS, Layout, ParsedRow, ScoredRows, detect_format
from rm_trl.data.formats.step_sources import math_shepherd_row, prm800k_row
from rm_trl.data.formats.stepwise import STEPWISE_SCHEMA, parse_stepwise_row
from rm_trl.data.steps import group_solutions_by_prompt
from rm_trl.packing import PackedRewardDataCollator

SEP = "<|step|>"
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
LAYOUT = Layout("stepwise", targets=("labels",), fields=("prompt", "completions", "labels"))
GOOD = {"prompt": "What is 2 + 3 * 4?", "completions": ["3 * 4 = 12.", " 2 + 12 = 14.", " The answer is 14."]}


def parse(row, **options):
    return parse_stepwise_row(row, 7, LAYOUT, renderer=None, **options)


def problems_of(row, **options):
    out = parse(row, **options)
    assert isinstance(out, list), out
    return {(p.field, p.reason) for p in out}


# ----- bad rows: each names row and field -----------------------------------------------------------------------
BAD_ROWS = [
    ("empty step", {"completions": ["a", "", "c"]}, ("completions[1]", "empty")),
    ("whitespace step", {"completions": ["a", "b", "  \n"]}, ("completions[2]", "empty")),
    ("step not text", {"completions": ["a", 3, "c"]}, ("completions[1]", "wrong_type")),
    ("step None", {"completions": [None, "b", "c"]}, ("completions[0]", "wrong_type")),
    ("step holds the separator", {"completions": ["a", f"b {SEP} c", "c"]}, ("completions[1]", "contains_separator")),
    ("completions not a list", {"completions": "a b c"}, ("completions", "wrong_type")),
    ("no steps", {"completions": [], "labels": []}, ("completions", "too_few")),
    ("labels not a list", {"labels": "true"}, ("labels", "wrong_type")),
    ("labels missing", {"labels": None}, ("labels", "missing")),
    ("too few labels", {"labels": [True, False]}, ("labels", "length_mismatch")),
    ("too many labels", {"labels": [True, False, True, True]}, ("labels", "length_mismatch")),
    ("label is text", {"labels": [True, "false", True]}, ("labels[1]", "bad_label")),
    ("label above 1", {"labels": [True, 1.5, True]}, ("labels[1]", "bad_label")),
    ("label below 0", {"labels": [-0.1, True, True]}, ("labels[0]", "bad_label")),
    ("label NaN", {"labels": [True, True, float("nan")]}, ("labels[2]", "bad_label")),
    ("label a list", {"labels": [True, [1], True]}, ("labels[1]", "bad_label")),
    ("every label masked", {"labels": [None, None, None]}, ("labels", "all_masked")),
    ("prompt holds the separator", {"prompt": f"Q {SEP}"}, ("prompt", "contains_separator")),
    ("prompt not text", {"prompt": 5}, ("prompt", "wrong_type")),
]


@pytest.mark.parametrize("bad,expected", [(b, e) for _, b, e in BAD_ROWS], ids=[n for n, _, _ in BAD_ROWS])
def test_bad_rows_are_named_by_row_and_field(bad, expected):
    row = {**GOOD, "labels": [True, True, False], **bad}
    assert expected in problems_of(row)
    assert all(p.row == 7 for p in parse(row))


def test_label_after_first_error_is_invalid_when_asked():
    row = {**GOOD, "labels": [True, False, True]}
    assert problems_of(row, after_first_error="error") == {("labels[2]", "after_first_error")}
    assert isinstance(parse({**GOOD, "labels": [True, False, None]}, after_first_error="error"), ParsedRow)
    assert isinstance(parse(row), ParsedRow)  # keep (the default) trains every labelled step


def test_bad_row_through_the_pipeline_names_row_and_step(llama_tokenizer):
    tokenizer = with_separator(llama_tokenizer)
    rows = [{**GOOD, "labels": [True, True, False]}, {**GOOD, "completions": ["a", "", "c"], "labels": [1.0, 1.0, 0.0]}]
    with pytest.raises(DataValidationError, match=r"row 1, field 'completions\[1\]'"):
        prepare(Dataset.from_list(rows[:1] + [{**rows[1], "labels": [True, True, False]}]), tokenizer)
    prepared = prepare(
        Dataset.from_list([rows[0], {**rows[1], "labels": [True, True, False]}]), tokenizer, invalid_rows="skip"
    )
    assert prepared.report.invalid == {"empty": 1} and prepared.dataset["row"] == [0]


# ----- valid rows ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "labels,expected",
    [
        ([True, True, False], [1.0, 1.0, 0.0]),  # hard
        ([0.9, 0.5, 0.0], [0.9, 0.5, 0.0]),  # soft (Monte-Carlo estimates)
        ([1, None, 0], [1.0, math.nan, 0.0]),  # masked
    ],
)
def test_valid_rows_parse_to_one_solution_with_a_label_per_step(labels, expected):
    parsed = parse({**GOOD, "labels": labels})
    assert parsed.prompt == GOOD["prompt"]
    assert parsed.responses == ["3 * 4 = 12.<|step|> 2 + 12 = 14.<|step|> The answer is 14.<|step|>"]
    np.testing.assert_array_equal(parsed.targets["labels"], expected)


def test_after_first_error_mask_and_truncate():
    row = {**GOOD, "labels": [False, True, True]}
    np.testing.assert_array_equal(parse(row, after_first_error="mask").targets["labels"], [0.0, math.nan, math.nan])
    truncated = parse(row, after_first_error="truncate")
    assert truncated.targets["labels"] == [0.0] and truncated.responses == ["3 * 4 = 12.<|step|>"]


def test_scoring_reads_no_labels():
    layout = STEPWISE_SCHEMA.detect(["prompt", "completions"], {}, training=False)
    parsed = parse_stepwise_row(dict(GOOD), 0, layout, renderer=None, training=False)
    assert isinstance(parsed, ParsedRow) and parsed.targets == {}
    assert detect_format(["prompt", "completions", "labels"]) == "stepwise"
    assert detect_format(["prompt", "completions", "ranks"]) == "ranked"


def test_conversational_prompt_is_rendered_with_the_generation_prompt(llama_tokenizer):
    tokenizer = with_separator(llama_tokenizer)
    assert tokenizer.chat_template
    prompt = [{"role": "system", "content": "Be exact."}, {"role": "user", "content": "What is 2 + 3 * 4?"}]
    data = Dataset.from_list([{"prompt": prompt, "completions": GOOD["completions"], "labels": [True, True, False]}])
    prepared = prepare(data, tokenizer)
    row = prepared.dataset[0]
    assert prepared.layout.conversational
    rendered = tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
    assert tokenizer.decode(row["prompt_ids"]) == rendered
    assert tokenizer.decode(row["response_ids"][0]).endswith("The answer is 14.<|step|>")  # no end of turn after it
    assert decoded_positions(tokenizer, row) == [[SEP] * 3]


# ----- tokenization: positions, length, prefixes ---------------------------------------------------------------
def with_separator(tokenizer):
    tokenizer.add_special_tokens({"additional_special_tokens": [SEP]})
    return tokenizer


def prepare(data, tokenizer, *, max_length=None, truncation="drop", invalid_rows="error", purpose="train", **options):
    return prepare_dataset(
        data,
        STEPWISE_SCHEMA,
        tokenizer,
        split="train",
        max_length=max_length,
        truncation=truncation,
        invalid_rows=invalid_rows,
        append_eos=False,
        parse_options=options,
        purpose=purpose,
    )


def decoded_positions(tokenizer, row):
    return [[tokenizer.decode([ids[p]]) for p in ps] for ids, ps in zip(row["response_ids"], row["reward_positions"])]


def test_positions_land_on_the_separators_and_labels_follow(llama_tokenizer):
    tokenizer = with_separator(llama_tokenizer)
    rows = [
        {**GOOD, "labels": [1.0, 0.5, None]},
        {"prompt": "Q", "completions": ["a", "b c"], "labels": [0.0, 1.0]},
    ]
    prepared = prepare(Dataset.from_list(rows), tokenizer)
    first = prepared.dataset[0]
    assert decoded_positions(tokenizer, first) == [[SEP] * 3]
    assert first["reward_positions"][0][-1] == len(first["response_ids"][0]) - 1  # the last token is a separator
    assert (
        tokenizer.decode(first["prompt_ids"] + first["response_ids"][0])
        == GOOD["prompt"] + parse({**GOOD, "labels": [1, 1, 1]}).responses[0]
    )
    np.testing.assert_array_equal(first["labels"], [1.0, 0.5, math.nan])
    assert prepared.dataset[1]["reward_positions"] == [[1, 4]] or len(prepared.dataset[1]["reward_positions"][0]) == 2


def test_a_tokenizer_without_the_separator_is_a_clear_error(llama_tokenizer):
    with pytest.raises(DataValidationError, match="not one token of the tokenizer.*ensure_step_separator"):
        prepare(Dataset.from_list([{**GOOD, "labels": [True, True, True]}]), llama_tokenizer)


def test_a_step_whose_tokens_hold_the_separator_is_a_row_problem(llama_tokenizer):
    # "." is one token of SmolLM2, but " ." is another: a step ending with a space swallows its separator
    for sep, steps, k in ((".", ["a", "b ", "c"], 1), (".", ["a ", "b"], 0)):
        rows = [{"prompt": "Q", "completions": ["ok"], "labels": [True]}, {"prompt": "Q", "completions": steps}]
        rows[1]["labels"] = [True] * len(steps)
        with pytest.raises(DataValidationError, match=rf"row 1, field 'completions\[{k}\]'.*separator token"):
            prepare(Dataset.from_list(rows), llama_tokenizer, step_separator=sep)


def test_over_length_rows_lose_whole_steps_and_are_counted(llama_tokenizer):
    tokenizer = with_separator(llama_tokenizer)
    steps = [f" step number {i} is fine." for i in range(6)]
    rows = [
        {"prompt": "Q:", "completions": steps, "labels": [True, True, False, True, None, True]},
        {"prompt": "Q:", "completions": steps[:1], "labels": [True]},
        {"prompt": "a long prompt " * 20, "completions": steps[:2], "labels": [True, False]},
    ]
    prompt_len = len(tokenizer("Q:", add_special_tokens=False)["input_ids"])
    step_len = len(tokenizer(steps[1] + SEP, add_special_tokens=False)["input_ids"])
    max_length = prompt_len + 3 * step_len + 2  # three steps fit, not four
    prepared = prepare(Dataset.from_list(rows), tokenizer, max_length=max_length)
    kept = prepared.dataset[0]
    assert len(kept["reward_positions"][0]) == 3 and decoded_positions(tokenizer, kept) == [[SEP] * 3]
    np.testing.assert_array_equal(kept["labels"], [1.0, 1.0, 0.0])
    assert kept["response_ids"][0][-1] == tokenizer.convert_tokens_to_ids(SEP)  # cut right after a separator
    assert tokenizer.decode(kept["response_ids"][0]) == "".join(s + SEP for s in steps[:3])
    report = prepared.report
    assert report.truncated["steps_dropped"] == 1 and report.steps_dropped == {"overlength": 3}
    assert report.dropped == {"overlength": 1} and prepared.not_kept == {2: "dropped: overlength"}
    assert report.rows_out == 2 and "steps dropped overlength=3" in report.summary()


def test_truncate_after_first_error_is_counted(llama_tokenizer):
    tokenizer = with_separator(llama_tokenizer)
    rows = [{**GOOD, "labels": [True, False, True]}, {**GOOD, "labels": [False, True, True]}]
    prepared = prepare(Dataset.from_list(rows), tokenizer, after_first_error="truncate")
    assert [len(p[0]) for p in prepared.dataset["reward_positions"]] == [2, 1]
    assert prepared.report.steps_dropped == {"after_first_error": 3}


def test_steps_as_prefixes_for_encoders(minilm_path):
    tokenizer = with_separator(AutoTokenizer.from_pretrained(minilm_path))
    rows = [{**GOOD, "labels": [True, True, False]}]
    row = prepare(Dataset.from_list(rows), tokenizer, steps_as_prefixes=True).dataset[0]
    assert len(row["response_ids"]) == 3 and row["labels"] == [1.0, 1.0, 0.0]
    for i, (response, positions) in enumerate(zip(row["response_ids"], row["reward_positions"])):
        assert positions == [len(response) - 1]  # one reward each, at its end (the outcome rule)
        assert tokenizer.convert_ids_to_tokens(response[-2:]) == [SEP, "[SEP]"]
        assert tokenizer.convert_ids_to_tokens(response).count(SEP) == i + 1
    assert tokenizer.convert_ids_to_tokens(row["prompt_ids"][:1]) == ["[CLS]"]


# ----- grouping and collation -------------------------------------------------------------------------------------
def test_group_solutions_by_prompt_and_the_batches_it_makes(llama_tokenizer):
    tokenizer = with_separator(llama_tokenizer)
    rows = [
        {"prompt": "P1", "completions": ["a", "b"], "labels": [1.0, 0.0]},
        {"prompt": "P2", "completions": ["c"], "labels": [0.5]},
        {"prompt": "P1", "completions": ["d", "e", "f"], "labels": [1.0, None, 0.0]},
    ]
    tokenized = prepare(Dataset.from_list(rows), tokenizer).dataset
    grouped = group_solutions_by_prompt(tokenized)
    assert len(grouped) == 2 and grouped["row"] == [0, 1]
    first = grouped[0]
    assert first["response_ids"] == tokenized[0]["response_ids"] + tokenized[2]["response_ids"]
    assert first["reward_positions"] == tokenized[0]["reward_positions"] + tokenized[2]["reward_positions"]
    np.testing.assert_array_equal(first["labels"], [1.0, 0.0, 1.0, math.nan, 0.0])
    assert first["length"] == len(first["prompt_ids"]) + sum(len(r) for r in first["response_ids"])
    sep_id = tokenizer.convert_tokens_to_ids(SEP)
    for collator in (
        RewardDataCollator(pad_token_id=0, target_names=("labels",)),
        PackedRewardDataCollator(pad_token_id=0, target_names=("labels",)),
        PackedRewardDataCollator(pad_token_id=0, target_names=("labels",), max_row_tokens=64),
    ):
        for examples, counts, labels in (
            (list(tokenized), [2, 1, 3], [1.0, 0.0, 0.5, 1.0, math.nan, 0.0]),
            (list(grouped), [2, 3, 1], [1.0, 0.0, 1.0, math.nan, 0.0, 0.5]),
        ):
            batch = collator(examples)
            assert batch["position_counts"].tolist() == counts
            assert batch["position_counts"].dtype == torch.long
            np.testing.assert_array_equal(batch["labels"].numpy(), np.float32(labels))
            assert batch["reward_index"].numel() == sum(counts) == batch["labels"].numel()
            assert (batch["input_ids"].flatten()[batch["reward_index"]] == sep_id).all()


def test_outcome_batches_carry_one_position_per_response():
    examples = [{"row": 0, "prompt_ids": [1, 2], "response_ids": [[3], [4, 5]]}]
    assert RewardDataCollator(pad_token_id=0)(examples)["position_counts"].tolist() == [1, 1]


def test_duplicates_and_conflicts_with_list_labels(llama_tokenizer):
    tokenizer = with_separator(llama_tokenizer)
    row = {**GOOD, "labels": [1.0, None, 0.0]}
    rows = [row, dict(row), {**GOOD, "labels": [1.0, 1.0, 0.0]}]
    report = prepare(Dataset.from_list(rows), tokenizer).report
    assert report.flagged == {"duplicate": 1, "conflicting": 2}  # NaN labels are equal; a changed label conflicts


# ----- evaluation and score output ------------------------------------------------------------------------------
def test_evaluate_and_write_scores():
    stepwise = FORMATS["stepwise"]
    raw = Dataset.from_list(
        [
            {**GOOD, "labels": [1.0, 1.0, 0.0]},
            {**GOOD, "labels": [1.0, None, 1.0]},
            {"prompt": "Q", "completions": ["x"], "labels": [0.0]},
        ]
    )
    rewards = [np.array([2.0, 1.0, -1.0]), np.array([1.0, -3.0, 2.0]), np.array([1.0])]
    scored = ScoredRows(raw, np.arange(3), rewards, [np.array([10]), np.array([12]), np.array([3])])
    evaluation = stepwise.evaluate(scored)
    assert evaluation.metrics["step_accuracy"] == pytest.approx(5 / 6)  # row 2: its wrong step is read as right
    assert stepwise.headline in evaluation.metrics and evaluation.rows == 3
    row = {}
    stepwise.write_scores(row, np.array([0.0, 2.0], np.float32))
    assert row["step_rewards"] == [0.0, 2.0]
    assert row["step_probabilities"] == pytest.approx([0.5, 1 / (1 + math.exp(-2))])
    assert stepwise.response_field(3) == "completions[3]"


# ----- source formats -------------------------------------------------------------------------------------------
MS = {
    "input": "Janet has 3 eggs. How many? Step 1: She has 3 eggs. ки\nStep 2: The answer is 4. ки",
    "label": "Janet has 3 eggs. How many? Step 1: She has 3 eggs. +\nStep 2: The answer is 4. -",
}


def test_math_shepherd_rows_convert_exactly():
    row = math_shepherd_row(MS, 0)
    assert row == {
        "prompt": "Janet has 3 eggs. How many? ",
        "completions": ["Step 1: She has 3 eggs. ", "\nStep 2: The answer is 4. "],
        "labels": [True, False],
    }
    assert row["prompt"] + "".join(row["completions"]) == MS["input"].replace("ки", "")
    args = DataArguments(train_data="unused")
    converted, stats = convert_for(Dataset.from_list([MS, MS]), "stepwise", args)
    assert detect_format(converted.column_names) == "stepwise" and stats["from"] == "math_shepherd"
    assert stats["steps"] == 4 and converted[0] == row
    tagged = {k: v.replace("ки", "<tag>") for k, v in MS.items()}
    tagged["label"] = MS["label"]
    assert math_shepherd_row(tagged, 0, step_tag="<tag>") == row


@pytest.mark.parametrize(
    "bad,field,reason",
    [
        ({"label": MS["label"].replace("3 eggs. +", "4 eggs. +")}, "label (step 0)", "label_mismatch"),
        ({"label": MS["label"].replace("4. -", "5. -")}, "label (step 1)", "label_mismatch"),
        ({"label": MS["label"].replace("+", "?")}, "label (step 0)", "bad_label"),
        ({"input": MS["input"] + " more"}, "input", "unlabelled_step"),
        ({"input": "no tags", "label": "no tags"}, "input", "no_steps"),
        (
            {"input": MS["input"].replace("Step 1:", "S1"), "label": MS["label"].replace("Step 1:", "S1")},
            "input",
            "no_first_step",
        ),
        ({"label": None}, "label", "missing"),
        ({"input": 3}, "input", "wrong_type"),
    ],
)
def test_bad_math_shepherd_rows(bad, field, reason):
    problems = math_shepherd_row({**MS, **bad}, 4)
    assert isinstance(problems, list) and (problems[0].row, problems[0].field, problems[0].reason) == (4, field, reason)


def test_bad_math_shepherd_row_stops_conversion_with_row_and_step():
    args = DataArguments(train_data="unused")
    bad = {**MS, "label": MS["label"].replace("4. -", "5. -")}
    with pytest.raises(DataValidationError, match=r"row 1, field 'label \(step 1\)'"):
        convert_for(Dataset.from_list([MS, bad]), "stepwise", args)
    converted, stats = convert_for(Dataset.from_list([MS, bad]), "stepwise", args, invalid_rows="skip")
    assert len(converted) == 1 and stats["skipped_invalid"] == {"label_mismatch": 1}


@pytest.mark.parametrize(
    "neutral,expected",
    [("masked", [True, None, False]), ("positive", [True, True, False]), ("negative", [True, False, False])],
)
def test_prm800k_flat_ratings(neutral, expected):
    row = {"prompt": "Q", "completions": ["a", "b", "c"], "ratings": [1, 0, -1]}
    assert prm800k_row(row, 0, neutral_rating=neutral)["labels"] == expected
    args = DataArguments(train_data="unused", neutral_rating=neutral)
    converted, stats = convert_for(Dataset.from_list([row]), "stepwise", args)
    assert converted[0]["labels"] == expected and stats["neutral_rating"] == neutral


def test_prm800k_native_rows_take_the_chosen_completion():
    native = {
        "question": {"problem": "What is 1 + 1?", "ground_truth_answer": "2"},
        "label": {
            "steps": [
                {
                    "completions": [{"text": "1 + 1 = 3", "rating": -1}, {"text": "1 + 1 = 2", "rating": 1}],
                    "chosen_completion": 1,
                    "human_completion": None,
                },
                {
                    "completions": [{"text": "Hmm.", "rating": None}, {"text": "So 2.", "rating": 0}],
                    "chosen_completion": None,
                    "human_completion": None,
                },
            ],
            "finish_reason": "solution",
        },
    }
    assert prm800k_row(native, 0) == {
        "prompt": "What is 1 + 1?",
        "completions": ["1 + 1 = 2", "So 2."],
        "labels": [True, None],
    }
    assert detect_format(["question", "label", "timestamp"]) == "prm800k"
    converted, _ = convert_for(
        Dataset.from_list([native]), "stepwise", DataArguments(train_data="x", neutral_rating="positive")
    )
    assert converted[0]["labels"] == [True, True]
    broken = {
        **native,
        "label": {"steps": [{"completions": [{"text": "x", "rating": None}], "chosen_completion": None}]},
    }
    assert [(p.field, p.reason) for p in prm800k_row(broken, 2)] == [("label.steps[0]", "no_completion")]


@pytest.mark.parametrize(
    "bad,field",
    [
        ({"ratings": [1, 2]}, "ratings[1]"),
        ({"ratings": [1]}, "ratings"),
        ({"ratings": [1, "1"]}, "ratings[1]"),
        ({"ratings": [True, 1]}, "ratings[0]"),
    ],
)
def test_bad_prm800k_ratings(bad, field):
    problems = prm800k_row({"prompt": "Q", "completions": ["a", "b"], **bad}, 3)
    assert isinstance(problems, list) and problems[0].field == field and problems[0].row == 3


# ----- fuzz: only DataValidationError / row problems, nothing altered silently -----------------------------------
values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4),
    max_leaves=8,
)
step_text = st.text(min_size=1, max_size=12).filter(lambda s: SEP not in s and "ки" not in s)


@FUZZ
@given(
    prompt=st.one_of(st.text(max_size=10), values),
    steps=st.one_of(st.lists(st.one_of(step_text, values), max_size=5), values),
    labels=st.one_of(st.lists(st.one_of(st.none(), st.booleans(), st.floats(-1, 2), values), max_size=5), values),
    mode=st.sampled_from(["keep", "mask", "truncate", "error"]),
)
def test_fuzz_stepwise_parser(prompt, steps, labels, mode):
    row = {"prompt": prompt, "completions": steps, "labels": labels}
    out = parse(row, after_first_error=mode)
    if isinstance(out, list):
        assert out and all(p.row == 7 and p.field and p.message for p in out)
        return
    kept = out.targets["labels"]
    assert 1 <= len(kept) <= len(steps) and (len(kept) == len(steps) or mode == "truncate")
    assert out.responses == ["".join(s + SEP for s in steps[: len(kept)])]
    for given_label, label in zip(labels, kept):
        if not (mode == "mask" and math.isnan(label)):
            assert (
                label == pytest.approx(float(given_label), nan_ok=True)
                if given_label is not None
                else math.isnan(label)
            )


@FUZZ
@given(
    prompt=st.text(max_size=10).filter(lambda s: "ки" not in s),
    steps=st.lists(step_text, min_size=1, max_size=5),
    marks=st.lists(st.sampled_from("+-"), min_size=5, max_size=5),
    corrupt=st.one_of(st.none(), st.tuples(st.integers(0, 200), st.text(max_size=2))),
)
def test_fuzz_math_shepherd(prompt, steps, marks, corrupt):
    steps = ["Step 1:" + steps[0], *steps[1:]]
    text = prompt + "".join(s + "ки" for s in steps)
    label = prompt + "".join(s + m for s, m in zip(steps, marks))
    if corrupt is not None:
        at, insert = corrupt
        label = label[:at] + insert + label[at + len(insert) :]
    out = math_shepherd_row({"input": text, "label": label}, 0)
    if isinstance(out, list):
        assert corrupt is not None and out[0].row == 0
        return
    assert out["prompt"] + "".join(out["completions"]) == text.replace("ки", "")
    assert len(out["labels"]) == text.count("ки")
    if corrupt is None:
        assert out["labels"] == [m == "+" for m in marks[: len(steps)]]


@FUZZ
@given(
    steps=st.lists(step_text, min_size=1, max_size=4),
    ratings=st.lists(st.one_of(st.sampled_from([-1, 0, 1, None]), values), max_size=5),
    neutral=st.sampled_from(["masked", "positive", "negative"]),
)
def test_fuzz_prm800k(steps, ratings, neutral):
    out = prm800k_row({"prompt": "Q", "completions": steps, "ratings": ratings}, 0, neutral_rating=neutral)
    if isinstance(out, list):
        assert out[0].row == 0 and out[0].field.startswith("ratings")
        return
    assert out["completions"] == steps and len(out["labels"]) == len(steps)
    for rating, label in zip(ratings, out["labels"]):
        assert (
            label
            == {1: True, -1: False, None: None, 0: {"masked": None, "positive": True, "negative": False}[neutral]}[
                rating
            ]
        )
