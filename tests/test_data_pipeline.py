"""Format detection, validation errors, the over-length policies and their counts."""

import pytest
from datasets import Dataset
from transformers import AutoTokenizer

from rm_trl.data import PAIRWISE_SCHEMA, DataValidationError, fit_to_length, prepare_dataset, split_implicit_prompt
from rm_trl.data.tokenize import SequenceTemplate
from rm_trl.modeling import setup_pad_token

from .conftest import make_tiny_llama


@pytest.fixture(scope="module")
def bert_tokenizer(minilm_path):
    return AutoTokenizer.from_pretrained(minilm_path)


def prepare(rows, tokenizer, **kwargs):
    options = dict(split="train", max_length=64, truncation="truncate_prompt", invalid_rows="error", append_eos=None)
    options.update(kwargs)
    parse_options = {"turn_markers": ("\n\nAssistant:",)}
    return prepare_dataset(Dataset.from_list(rows), PAIRWISE_SCHEMA, tokenizer, parse_options=parse_options, **options)


# ----- format detection ---------------------------------------------------------------------------------------------
def test_explicit_prompt_detected(bert_tokenizer):
    out = prepare([{"prompt": "Q?", "chosen": " yes", "rejected": " no"}], bert_tokenizer)
    assert out.layout.implicit_prompt is False and out.layout.conversational is False
    row = out.dataset[0]
    assert bert_tokenizer.decode(row["prompt_ids"]) == "[CLS] q?"
    assert [bert_tokenizer.decode(r) for r in row["response_ids"]] == ["yes [SEP]", "no [SEP]"]


def test_implicit_prompt_split_at_last_shared_turn():
    chosen = "\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: Help me\n\nAssistant: Sure, here is how."
    rejected = "\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: Help me\n\nAssistant: Sorry, no."
    prompt, c, r = split_implicit_prompt(chosen, rejected, ["\n\nAssistant:"])
    assert prompt == "\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: Help me\n\nAssistant:"
    assert (c, r) == (" Sure, here is how.", " Sorry, no.")
    # Responses that share their first words are still split at the turn marker, not inside the response.
    prompt, c, r = split_implicit_prompt(
        "\n\nHuman: x\n\nAssistant: I think yes", "\n\nHuman: x\n\nAssistant: I think no", ["\n\nAssistant:"]
    )
    assert (prompt, c, r) == ("\n\nHuman: x\n\nAssistant:", " I think yes", " I think no")


def test_implicit_prompt_dataset_and_margin(bert_tokenizer):
    rows = [
        {"chosen": "\n\nHuman: Q\n\nAssistant: good answer", "rejected": "\n\nHuman: Q\n\nAssistant: bad", "margin": 2}
    ]
    out = prepare(rows, bert_tokenizer)
    assert out.layout.implicit_prompt and out.layout.targets == ("margin",)
    assert out.target_names == ("margin",)
    assert out.dataset[0]["margin"] == 2.0
    assert bert_tokenizer.decode(out.dataset[0]["prompt_ids"]) == "[CLS] human : q assistant :"


def test_conversational_rendered_with_chat_template_and_single_bos(smol_tokenizer_dir):
    from tokenizers.processors import TemplateProcessing

    tokenizer = AutoTokenizer.from_pretrained(smol_tokenizer_dir)
    # Make the tokenizer add a BOS itself AND the template print one: a classic double-BOS trap.
    tokenizer.bos_token = "<|endoftext|>"
    tokenizer._tokenizer.post_processor = TemplateProcessing(
        single="<|endoftext|> $A", special_tokens=[("<|endoftext|>", tokenizer.bos_token_id)]
    )
    tokenizer.chat_template = (
        "{{ bos_token }}{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
        "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    setup_pad_token(make_tiny_llama(tokenizer), tokenizer)
    rows = [
        {
            "prompt": [{"role": "user", "content": "Hi there"}],
            "chosen": [{"role": "assistant", "content": "Hello! How can I help?"}],
            "rejected": [{"role": "assistant", "content": "Go away."}],
        }
    ]
    out = prepare(rows, tokenizer)
    assert out.layout.conversational
    row = out.dataset[0]
    full = row["prompt_ids"] + row["response_ids"][0]
    assert full.count(tokenizer.bos_token_id) == 1 and full[0] == tokenizer.bos_token_id
    assert tokenizer.decode(full) == (
        "<|endoftext|><|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\nHello! How can I help?<|im_end|>\n"
    )
    # The chat template closes the turn: no extra EOS is appended to conversational data.
    assert out.template.suffix == ()
    # Plain text with the same tokenizer keeps its single BOS and gets EOS appended.
    plain = prepare([{"prompt": "Q:", "chosen": " yes", "rejected": " no"}], tokenizer)
    assert plain.template.prefix == (tokenizer.bos_token_id,)
    assert plain.template.suffix == (tokenizer.eos_token_id,)


def test_implicit_conversational(smol_tokenizer_dir):
    tokenizer = AutoTokenizer.from_pretrained(smol_tokenizer_dir)
    shared = [{"role": "user", "content": "What is 2+2?"}]
    rows = [
        {
            "chosen": shared + [{"role": "assistant", "content": "4"}],
            "rejected": shared + [{"role": "assistant", "content": "5"}],
        }
    ]
    out = prepare(rows, tokenizer)
    assert out.layout.conversational and out.layout.implicit_prompt
    prompt = tokenizer.decode(out.dataset[0]["prompt_ids"])
    assert prompt.endswith("<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n")
    assert tokenizer.decode(out.dataset[0]["response_ids"][0]) == "4<|im_end|>\n"


# ----- validation ---------------------------------------------------------------------------------------------------
GOOD = {"prompt": "Q?", "chosen": " yes", "rejected": " no"}


def test_missing_column_names_the_column(bert_tokenizer):
    with pytest.raises(DataValidationError, match=r"missing \['rejected'\]"):
        prepare([{"prompt": "Q?", "chosen": " yes"}], bert_tokenizer)


@pytest.mark.parametrize(
    "bad, field, reason_text",
    [
        ({"chosen": None}, "chosen", "None"),
        ({"chosen": ""}, "chosen", "empty"),
        ({"rejected": "   \n\t"}, "rejected", "whitespace"),
        ({"rejected": " yes"}, "rejected", "identical"),
        ({"prompt": None}, "prompt", "None"),
    ],
)
def test_invalid_rows_raise_with_row_and_field(bert_tokenizer, bad, field, reason_text):
    rows = [dict(GOOD), dict(GOOD), {**GOOD, **bad}]
    with pytest.raises(DataValidationError) as err:
        prepare(rows, bert_tokenizer)
    message = str(err.value)
    assert f"row 2, field '{field}'" in message
    assert reason_text in message
    assert "invalid_rows: skip" in message
    assert err.value.problems[0].row == 2


def test_wrong_type_column(bert_tokenizer):
    # Arrow keeps one type per column, so a wrong type arrives as a whole column (e.g. ids instead of text).
    with pytest.raises(DataValidationError, match="row 0, field 'chosen': expected text, got int"):
        prepare([{"prompt": "Q?", "chosen": 1, "rejected": 2}], bert_tokenizer)


@pytest.mark.parametrize("margin, reason", [(float("nan"), "not finite"), ("big", "expected a number"), (None, "None")])
def test_bad_margin(bert_tokenizer, margin, reason):
    rows = [{**GOOD, "margin": 1.0}, {**GOOD, "margin": margin}]
    if isinstance(margin, str):  # Arrow cannot mix str and float in one column: build the column as strings
        rows = [{**GOOD, "margin": "1.0"}, {**GOOD, "margin": margin}]
    with pytest.raises(DataValidationError, match=reason):
        prepare(rows, bert_tokenizer)


@pytest.mark.parametrize(
    "chosen, message",
    [
        ([{"role": "robot", "content": "hi"}], "unknown role 'robot'"),
        ([{"role": "assistant"}], "no text 'content'"),
        ([{"role": "user", "content": "hi"}], "last message must be from the assistant"),
        ([], "message list is empty"),
    ],
)
def test_malformed_messages(smol_tokenizer_dir, chosen, message):
    tokenizer = AutoTokenizer.from_pretrained(smol_tokenizer_dir)
    good = [{"role": "assistant", "content": "fine"}]
    rows = [
        {
            "prompt": [{"role": "user", "content": "Q"}],
            "chosen": good,
            "rejected": [{"role": "assistant", "content": "x"}],
        },
        {"prompt": [{"role": "user", "content": "Q"}], "chosen": chosen, "rejected": good},
    ]
    with pytest.raises(DataValidationError, match=message) as err:
        prepare(rows, tokenizer)
    assert "row 1" in str(err.value)


def test_skip_policy_counts_each_reason(bert_tokenizer, caplog):
    rows = [dict(GOOD), {**GOOD, "chosen": ""}, {**GOOD, "rejected": " yes"}, {**GOOD, "chosen": "  "}, dict(GOOD)]
    with caplog.at_level("WARNING"):
        out = prepare(rows, bert_tokenizer, invalid_rows="skip")
    assert out.report.rows_in == 5 and out.report.rows_out == 2
    assert dict(out.report.invalid) == {"empty": 2, "identical": 1}
    assert out.report.example_rows["invalid:empty"] == [1, 3]
    assert out.dataset["row"] == [0, 4]
    assert "skipped invalid empty=2, identical=1" in caplog.text


def test_empty_dataset_is_an_error(bert_tokenizer):
    with pytest.raises(DataValidationError, match="empty"):
        prepare_dataset(
            Dataset.from_dict({"prompt": [], "chosen": [], "rejected": []}),
            PAIRWISE_SCHEMA,
            bert_tokenizer,
            split="train",
            max_length=64,
            truncation="truncate_prompt",
            invalid_rows="error",
            append_eos=None,
        )


# ----- truncation ---------------------------------------------------------------------------------------------------
def test_fit_to_length_policies():
    prompt, responses = list(range(10)), [[100, 101, 102], [200]]
    assert fit_to_length(prompt, responses, 20, "truncate_prompt") == (prompt, responses, "ok")
    # Keeps every response whole; the prompt loses its oldest tokens, identically for both responses.
    assert fit_to_length(prompt, responses, 8, "truncate_prompt") == ([5, 6, 7, 8, 9], responses, "prompt_truncated")
    assert fit_to_length(prompt, responses, 8, "keep_start") == (list(range(8)), [[], []], "end_truncated")
    assert fit_to_length(prompt, responses, 12, "keep_start") == (prompt, [[100, 101], [200]], "end_truncated")
    assert fit_to_length(prompt, responses, 8, "drop")[2] == "overlength"
    assert fit_to_length(prompt, responses, 8, "error")[2] == "overlength"
    # A response longer than the budget on its own is cut at its end and the prompt is emptied.
    assert fit_to_length(prompt, [[1, 2, 3, 4, 5], [6]], 3, "truncate_prompt") == (
        [],
        [[1, 2, 3], [6]],
        "response_truncated",
    )
    assert fit_to_length(prompt, responses, None, "truncate_prompt")[2] == "ok"


LONG_PROMPT = "\n\nHuman: " + " ".join(f"word{i}" for i in range(60)) + "\n\nAssistant:"


def test_default_policy_truncates_prompt_and_counts(bert_tokenizer):
    rows = [{"prompt": LONG_PROMPT, "chosen": " a fine answer", "rejected": " a bad one"}, dict(GOOD)]
    out = prepare(rows, bert_tokenizer, max_length=32)
    assert out.report.truncated == {"prompt_truncated": 1}
    assert out.report.rows_out == 2
    row = out.dataset[0]
    assert all(len(row["prompt_ids"]) + len(r) <= 32 for r in row["response_ids"])
    assert bert_tokenizer.decode(row["response_ids"][0]) == "a fine answer [SEP]"  # response kept whole
    assert bert_tokenizer.decode(row["prompt_ids"]).endswith("assistant :")  # the end of the prompt survives
    assert row["prompt_ids"][0] == bert_tokenizer.cls_token_id


def test_identical_after_truncation_is_never_trained_on(bert_tokenizer):
    shared = " the same long beginning of a reply " * 4
    rows = [{"prompt": "Q:", "chosen": shared + "but good", "rejected": shared + "but bad"}, dict(GOOD)]
    out = prepare(rows, bert_tokenizer, max_length=24, truncation="keep_start")
    assert out.report.dropped == {"identical_after_truncation": 1}
    assert out.report.example_rows["identical_after_truncation"] == [0]
    assert out.dataset["row"] == [1]


def test_drop_policy_counts_and_error_policy_raises(bert_tokenizer):
    rows = [{"prompt": LONG_PROMPT, "chosen": " x", "rejected": " y"}, dict(GOOD)]
    out = prepare(rows, bert_tokenizer, max_length=32, truncation="drop")
    assert out.report.dropped == {"overlength": 1} and out.dataset["row"] == [1]
    with pytest.raises(DataValidationError, match=r"do not fit in max_length=32.*rows \[0\]"):
        prepare(rows, bert_tokenizer, max_length=32, truncation="error")


def test_nothing_left_is_an_error(bert_tokenizer):
    with pytest.raises(DataValidationError, match="no usable rows"):
        prepare(
            [{"prompt": LONG_PROMPT, "chosen": " x", "rejected": " y"}],
            bert_tokenizer,
            max_length=32,
            truncation="drop",
        )


def test_decoder_gets_eos_encoder_does_not(llama_tokenizer, bert_tokenizer):
    setup_pad_token(make_tiny_llama(llama_tokenizer), llama_tokenizer)
    decoder = SequenceTemplate.for_tokenizer(llama_tokenizer, append_eos=None, conversational=False)
    assert decoder.suffix == (llama_tokenizer.eos_token_id,) and decoder.prefix == ()
    encoder = SequenceTemplate.for_tokenizer(bert_tokenizer, append_eos=None, conversational=False)
    assert encoder.prefix == (bert_tokenizer.cls_token_id,) and encoder.suffix == (bert_tokenizer.sep_token_id,)
    assert SequenceTemplate.for_tokenizer(llama_tokenizer, append_eos=False, conversational=False).suffix == ()


def test_sequence_ending_with_pad_is_refused(qwen2_tokenizer):
    # Without rm-trl's pad set-up, pad == eos: every EOS-terminated sequence would end with the pad token.
    with pytest.raises(DataValidationError, match="ends with the pad token"):
        prepare([dict(GOOD)], qwen2_tokenizer)


def test_sequences_are_the_joint_tokenization_even_across_a_merge(llama_tokenizer):
    """Each sequence is `tokenizer(prompt + response)`: what TRL or any consumer feeds the model. When the
    tokenizer merges characters across the prompt/response boundary, the merged token goes to the responses."""
    setup_pad_token(make_tiny_llama(llama_tokenizer), llama_tokenizer)
    prompt, chosen, rejected = "It was truly un", "believable", "usual"
    separate = llama_tokenizer(prompt)["input_ids"] + llama_tokenizer(chosen)["input_ids"]
    assert separate != llama_tokenizer(prompt + chosen)["input_ids"]  # the boundary really merges here
    row = prepare([{"prompt": prompt, "chosen": chosen, "rejected": rejected}], llama_tokenizer).dataset[0]
    eos = [llama_tokenizer.eos_token_id]
    for response, ids in zip((chosen, rejected), row["response_ids"]):
        assert row["prompt_ids"] + ids == llama_tokenizer(prompt + response)["input_ids"] + eos
    assert len(row["prompt_ids"]) < len(llama_tokenizer(prompt)["input_ids"])  # the merged token left the prompt


def test_a_single_response_keeps_the_merged_boundary_token_when_cut(llama_tokenizer):
    """Rated rows have one response, so 'what the sequences share' was the whole prompt: a token merged across the
    boundary stayed in the prompt, and a response cut to the budget (prompt emptied) lost its first characters.
    The merged token now belongs to the response, as for pairs."""
    from rm_trl.data.formats import RATED_SCHEMA

    setup_pad_token(make_tiny_llama(llama_tokenizer), llama_tokenizer)
    prompt, response = "It was truly un", "believable" + " and long" * 20
    rows = [{"prompt": prompt, "response": response, "score": 1.0}]
    common = dict(split="train", truncation="truncate_prompt", invalid_rows="error", append_eos=None)
    whole = prepare_dataset(Dataset.from_list(rows), RATED_SCHEMA, llama_tokenizer, max_length=512, **common)
    row = whole.dataset[0]
    joint = llama_tokenizer(prompt + response)["input_ids"]
    assert row["prompt_ids"] + row["response_ids"][0] == joint + [llama_tokenizer.eos_token_id]
    assert len(row["prompt_ids"]) < len(llama_tokenizer(prompt)["input_ids"])  # the merged token left the prompt
    cut = prepare_dataset(Dataset.from_list(rows), RATED_SCHEMA, llama_tokenizer, max_length=24, **common)
    kept = cut.dataset[0]["response_ids"][0]
    assert cut.dataset[0]["prompt_ids"] == [] and kept[0] == row["response_ids"][0][0]  # the response's start
