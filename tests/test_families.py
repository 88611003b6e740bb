"""Rated and ranked formats, converters, and the pointwise / listwise / contrastive trainers on tiny models."""

import json
import math
import os

import pytest
import torch
from datasets import Dataset
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from rm_trl import (
    ContrastiveRewardConfig,
    ContrastiveRewardTrainer,
    DataArguments,
    ListwiseRewardConfig,
    ListwiseRewardTrainer,
    PointwiseRewardConfig,
    PointwiseRewardTrainer,
)
from rm_trl.data import DataValidationError, RewardDataCollator, prepare_dataset
from rm_trl.data.converters import convert_for, ranked_to_pairwise, rated_to_pairwise, rated_to_ranked
from rm_trl.data.formats import RANKED_SCHEMA, RATED_SCHEMA
from rm_trl.export import fold_reward_head
from rm_trl.losses import pad_groups

from .conftest import make_tiny_llama

GOOD = ["great helpful answer", "clear kind reply", "sure happy to help", "correct and thanks"]
BAD = ["awful rude", "wrong useless", "never stupid", "broken no"]


@pytest.fixture(scope="module")
def bert_tokenizer(minilm_path):
    return AutoTokenizer.from_pretrained(minilm_path)


def prepare(rows, schema, tokenizer, **options):
    return prepare_dataset(
        Dataset.from_list(rows),
        schema,
        tokenizer,
        split="train",
        max_length=64,
        truncation="truncate_prompt",
        invalid_rows="error",
        append_eos=None,
        parse_options=options,
    )


def ranked_rows(n, k_range=(2, 5), seed=0):
    import random

    rng = random.Random(seed)
    rows = []
    for i in range(n):
        k = rng.randint(*k_range)
        quality = [rng.random() for _ in range(k)]
        completions = [
            " " + " ".join(rng.choice(GOOD if q > 0.5 else BAD).split()[:2] + [str(j)]) for j, q in enumerate(quality)
        ]
        order = sorted(quality, reverse=True)
        ranks = [order.index(q) for q in quality]
        rows.append({"prompt": f"Question {i}:", "completions": completions, "ranks": ranks})
    return rows


def rated_rows(n, seed=0, attributes=("score",)):
    import random

    rng = random.Random(seed)
    rows = []
    for i in range(n):
        good = rng.random() > 0.5
        row = {"prompt": f"Q{i % 5}:", "response": " " + rng.choice(GOOD if good else BAD) + f" {i}"}
        for a, name in enumerate(attributes):
            row[name] = (4.0 if good else 1.0) + 0.5 * a + rng.random() * 0.2
        rows.append(row)
    return rows


# ----- rated format ---------------------------------------------------------------------------------------------------
def test_rated_multi_attribute_with_missing_values(bert_tokenizer):
    rows = [
        {"prompt": "Q", "response": " a", "helpful": 3.0, "correct": None},
        {"prompt": "Q", "response": " b", "helpful": float("nan"), "correct": 1},
    ]
    out = prepare(rows, RATED_SCHEMA, bert_tokenizer, score_columns=("helpful", "correct"))
    assert out.layout.targets == ("helpful", "correct")
    assert out.dataset["helpful"][0] == 3.0 and math.isnan(out.dataset["correct"][0])
    assert math.isnan(out.dataset["helpful"][1]) and out.dataset["correct"][1] == 1.0


@pytest.mark.parametrize(
    "rows, options, message",
    [
        ([{"prompt": "Q", "response": " a", "score": None}], {}, "row 0, field 'score': no score given"),
        ([{"prompt": "Q", "response": " a", "score": float("inf")}], {}, "not finite"),
        ([{"prompt": "Q", "response": " a", "score": 0.5}], {"binary_labels": True}, "must be 0 or 1"),
        ([{"prompt": "Q", "response": "  ", "score": 1.0}], {}, "row 0, field 'response'"),
        ([{"prompt": "Q", "response": " a", "h": None, "c": None}], {"score_columns": ("h", "c")}, "no score given"),
    ],
)
def test_rated_validation(bert_tokenizer, rows, options, message):
    with pytest.raises(DataValidationError, match=message):
        prepare(rows, RATED_SCHEMA, bert_tokenizer, **options)


def test_rated_missing_column(bert_tokenizer):
    with pytest.raises(DataValidationError, match=r"missing \['score'\]"):
        prepare([{"prompt": "Q", "response": " a", "rating": 1.0}], RATED_SCHEMA, bert_tokenizer)


# ----- ranked format --------------------------------------------------------------------------------------------------
def test_ranked_variable_k(bert_tokenizer):
    rows = [
        {"prompt": "Q1", "completions": [" a", " b", " c"], "ranks": [2, 0, 1]},
        {"prompt": "Q2", "completions": [" x", " y"], "ranks": [0, 0 + 1]},
        {"prompt": "Q3", "completions": [" p", " q", " r", " s"], "ranks": [0, 1, 1, 3]},
    ]
    out = prepare(rows, RANKED_SCHEMA, bert_tokenizer)
    assert [len(r) for r in out.dataset["response_ids"]] == [3, 2, 4]
    assert out.dataset["ranks"][2] == [0.0, 1.0, 1.0, 3.0]


@pytest.mark.parametrize(
    "row, message",
    [
        ({"completions": [" a"], "ranks": [0]}, "need K >= 2"),
        ({"completions": [" a", " b"], "ranks": [0, 1, 2]}, "3 ranks for 2 completions"),
        ({"completions": [" a", " b"], "ranks": [1, 2]}, "the best completion has rank 0"),
        ({"completions": [" a", " b"], "ranks": [0, 0]}, "all completions share one rank"),
        ({"completions": [" a", " b"], "ranks": [0, -1]}, "integers >= 0"),
        ({"completions": [" a", " a"], "ranks": [0, 1]}, "two different ranks"),
        ({"completions": [" a", ""], "ranks": [0, 1]}, r"field 'completions\[1\]'"),
        ({"completions": None, "ranks": [0, 1]}, "expected a list of completions"),
    ],
)
def test_ranked_validation(bert_tokenizer, row, message):
    good = {"prompt": "Q", "completions": [" ok", " no"], "ranks": [0, 1]}
    with pytest.raises(DataValidationError, match=message) as err:
        prepare([good, {"prompt": "Q", **row}], RANKED_SCHEMA, bert_tokenizer)
    assert "row 1" in str(err.value)


def test_ranked_tied_duplicates_are_fine_but_truncated_conflicts_are_dropped(bert_tokenizer):
    shared = " the same long beginning " * 6
    rows = [
        {"prompt": "Q", "completions": [shared + "good", shared + "bad", " short"], "ranks": [0, 1, 2]},
        {"prompt": "Q", "completions": [" same", " same", " other"], "ranks": [0, 0, 1]},
    ]
    out = prepare_dataset(
        Dataset.from_list(rows),
        RANKED_SCHEMA,
        bert_tokenizer,
        split="train",
        max_length=20,
        truncation="keep_start",
        invalid_rows="error",
        append_eos=None,
    )
    assert out.report.dropped == {"identical_after_truncation": 1}
    assert out.dataset["row"] == [1]


# ----- collator properties --------------------------------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.lists(st.integers(1, 50), min_size=0, max_size=6),
            st.lists(
                st.tuples(st.lists(st.integers(1, 50), min_size=1, max_size=6), st.integers(0, 3)),
                min_size=2,
                max_size=5,
            ),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_collator_any_k_any_ties_any_lengths(rows):
    examples = [
        {
            "row": i,
            "prompt_ids": prompt,
            "response_ids": [r for r, _ in responses],
            "ranks": [float(k) for _, k in responses],
        }
        for i, (prompt, responses) in enumerate(rows)
    ]
    batch = RewardDataCollator(pad_token_id=0, target_names=("ranks",))(examples)
    sizes = [len(ex["response_ids"]) for ex in examples]
    assert batch["input_ids"].shape[0] == sum(sizes) == batch["ranks"].shape[0]
    assert batch["group_sizes"].tolist() == sizes
    seqs = [ex["prompt_ids"] + r for ex in examples for r in ex["response_ids"]]
    for i, seq in enumerate(seqs):
        n = int(batch["attention_mask"][i].sum())
        assert batch["input_ids"][i, :n].tolist() == seq and n == len(seq)
        assert batch["input_ids"][i, n:].eq(0).all()
    ranks, mask = pad_groups(batch["ranks"], batch["group_sizes"], fill=-1.0)
    assert [ranks[i][mask[i]].tolist() for i in range(len(examples))] == [ex["ranks"] for ex in examples]


# ----- converters -----------------------------------------------------------------------------------------------------
def test_rated_to_ranked_and_pairwise():
    rows = [
        {"prompt": "A", "response": " a1", "score": 5.0},
        {"prompt": "A", "response": " a2", "score": 3.0},
        {"prompt": "A", "response": " a3", "score": 3.0},
        {"prompt": "B", "response": " b1", "score": 2.0},  # single response: no group
        {"prompt": "C", "response": " c1", "score": 1.0},
        {"prompt": "C", "response": " c2", "score": 1.2},  # within min gap of c1: all tied
    ]
    ranked, stats = rated_to_ranked(Dataset.from_list(rows), min_score_gap=0.5)
    assert ranked.to_list() == [
        {"prompt": "A", "completions": [" a1", " a2", " a3"], "ranks": [0, 1, 1], "scores": [5.0, 3.0, 3.0]}
    ]
    assert stats["single_response"] == 1 and stats["all_tied"] == 1
    pairs, stats = rated_to_pairwise(Dataset.from_list(rows), min_score_gap=0.5)
    assert pairs.to_list() == [
        {"prompt": "A", "chosen": " a1", "rejected": " a2", "margin": 2.0},
        {"prompt": "A", "chosen": " a1", "rejected": " a3", "margin": 2.0},
    ]


def test_ranked_to_pairwise_strategies():
    data = Dataset.from_list([{"prompt": "Q", "completions": [" b", " a", " d", " c"], "ranks": [1, 0, 3, 2]}])
    pairs = lambda s: [(p["chosen"], p["rejected"]) for p in ranked_to_pairwise(data, s)[0]]  # noqa: E731
    assert pairs("best_vs_worst") == [(" a", " d")]
    assert pairs("adjacent") == [(" a", " b"), (" b", " c"), (" c", " d")]
    assert len(pairs("all_pairs")) == 6


def test_convert_for_follows_data_arguments():
    rated = Dataset.from_list(rated_rows(10))
    args = DataArguments(train_data="x", pair_strategy="best_vs_worst")
    pairs, stats = convert_for(rated, "pairwise", args)
    assert set(pairs.column_names) == {"prompt", "chosen", "rejected", "margin"}
    assert stats["from"] == "rated" and stats["rows_out"] == len(pairs) == 5
    same, none = convert_for(pairs, "pairwise", args)
    assert same is pairs and none is None
    with pytest.raises(DataValidationError, match="cannot convert pairwise data to ranked"):
        convert_for(pairs, "ranked", args)


# ----- export fold ----------------------------------------------------------------------------------------------------
def test_fold_reward_head_is_exact(minilm_path, llama_tokenizer):
    for model in (
        AutoModelForSequenceClassification.from_pretrained(minilm_path, num_labels=3),
        make_tiny_llama(llama_tokenizer),
    ):
        if model.config.num_labels != 3:  # the tiny decoder has 1 output: rebuild its head with 3
            model.config.num_labels = 3
            model.score = torch.nn.Linear(model.config.hidden_size, 3, bias=False)
            model.config.pad_token_id = 0
        model.eval()
        weights = [0.5, -1.0, 2.0]
        folded = fold_reward_head(model, weights).eval()
        ids = torch.randint(5, 1000, (4, 9))
        with torch.no_grad():
            expected = model(input_ids=ids).logits @ torch.tensor(weights)
            got = folded(input_ids=ids).logits
        assert got.shape == (4, 1) and folded.config.num_labels == 1
        torch.testing.assert_close(got[:, 0], expected, atol=1e-5, rtol=1e-5)


# ----- trainers -------------------------------------------------------------------------------------------------------
def common_args(tmp_path, **kwargs):
    defaults = dict(
        output_dir=str(tmp_path),
        learning_rate=3e-3,
        per_device_train_batch_size=8,
        per_device_eval_batch_size=16,
        max_length=48,
        report_to="none",
        save_strategy="no",
        logging_steps=2,
        seed=0,
        disable_tqdm=True,
    )
    defaults.update(kwargs)
    return defaults


@pytest.mark.parametrize("packing", [False, True])
def test_listwise_forwards_each_response_once(tiny_llama, tmp_path, packing):
    model, tokenizer = tiny_llama
    rows = ranked_rows(12)
    seen = []
    original = model.forward

    def counting_forward(*args, **kwargs):
        seen.append(kwargs["input_ids"])
        return original(*args, **kwargs)

    model.forward = counting_forward
    args = ListwiseRewardConfig(
        **common_args(tmp_path, num_train_epochs=1, per_device_train_batch_size=4, packing=packing)
    )
    trainer = ListwiseRewardTrainer(
        model=model, args=args, processing_class=tokenizer, train_dataset=Dataset.from_list(rows)
    )
    trainer.train()
    assert len(seen) == 3  # one forward per batch of 4 ranked lists
    sequences = sum(ids.shape[0] for ids in seen)
    if packing:  # one packed sequence per list: the prompt once, then each completion once
        assert sequences == len(rows)
        real_tokens = sum(int((ids != tokenizer.pad_token_id).sum()) for ids in seen)
        data = trainer.train_dataset
        expected = sum(len(p) + sum(len(r) for r in rs) for p, rs in zip(data["prompt_ids"], data["response_ids"]))
        assert real_tokens == expected
    else:  # K sequences per list, never C(K, 2) pairs
        assert sequences == sum(len(r["completions"]) for r in rows)


@pytest.mark.parametrize("loss_type", ["all_pairs", "plackett_luce", "best_of_n"])
def test_listwise_learns(tiny_llama, tmp_path, loss_type):
    model, tokenizer = tiny_llama
    args = ListwiseRewardConfig(**common_args(tmp_path, num_train_epochs=3, loss_type=loss_type))
    trainer = ListwiseRewardTrainer(
        model=model,
        args=args,
        processing_class=tokenizer,
        train_dataset=Dataset.from_list(ranked_rows(64)),
        eval_dataset=Dataset.from_list(ranked_rows(32, seed=1)),
    )
    before = trainer.evaluate()
    trainer.train()
    after = trainer.evaluate()
    assert after["eval_loss"] < before["eval_loss"]
    assert after["eval_pair_accuracy"] > 0.75 and after["eval_pair_accuracy"] > before["eval_pair_accuracy"]
    assert {"eval_top1_accuracy", "eval_kendall_tau"} <= set(after)


@pytest.mark.parametrize("loss_type", ["mse", "huber"])
def test_pointwise_learns_and_stores_normalization(tiny_llama, tmp_path, loss_type):
    model, tokenizer = tiny_llama
    args = PointwiseRewardConfig(**common_args(tmp_path, num_train_epochs=3, loss_type=loss_type))
    trainer = PointwiseRewardTrainer(
        model=model,
        args=args,
        processing_class=tokenizer,
        train_dataset=Dataset.from_list(rated_rows(96)),
        eval_dataset=Dataset.from_list(rated_rows(32, seed=1)),
    )
    before = trainer.evaluate()
    trainer.train()
    after = trainer.evaluate()
    assert after["eval_loss"] < before["eval_loss"]
    assert after["eval_spearman"] > 0.6 and after["eval_mae"] < before["eval_mae"]
    out = trainer.save_reward_model()
    meta = json.load(open(os.path.join(out, "config.json")))["rm_trl"]
    norm = meta["loss"]["score_normalization"]["score"]
    assert 1.0 < norm["mean"] < 4.5 and norm["std"] > 0.5


def test_pointwise_bce(tiny_llama, tmp_path):
    model, tokenizer = tiny_llama
    rows = [dict(r, score=float(r["score"] > 2.5)) for r in rated_rows(64)]
    args = PointwiseRewardConfig(**common_args(tmp_path, num_train_epochs=3, loss_type="bce"))
    trainer = PointwiseRewardTrainer(
        model=model,
        args=args,
        processing_class=tokenizer,
        train_dataset=Dataset.from_list(rows),
        eval_dataset=Dataset.from_list(rows),
    )
    trainer.train()
    assert trainer.evaluate()["eval_accuracy"] > 0.9


def test_multi_attribute_export_folds_heads(tiny_llama, tmp_path):
    _, tokenizer = tiny_llama
    names = ("helpfulness", "correctness", "verbosity")
    rows = rated_rows(32, attributes=names)
    rows[0]["correctness"] = None  # a missing attribute is masked, not an error
    model = make_tiny_llama(tokenizer)
    model.config.num_labels = 3
    model.score = torch.nn.Linear(model.config.hidden_size, 3, bias=False)
    args = PointwiseRewardConfig(
        **common_args(tmp_path, max_steps=3, score_columns=list(names), attribute_weights=[0.5, 0.5, -0.25])
    )
    trainer = PointwiseRewardTrainer(
        model=model,
        args=args,
        processing_class=tokenizer,
        train_dataset=Dataset.from_list(rows),
        eval_dataset=Dataset.from_list(rows),
    )
    trainer.train()
    metrics = trainer.evaluate()
    assert {f"eval_spearman_{n}" for n in names} <= set(metrics)
    out = trainer.save_reward_model()
    attributes = AutoModelForSequenceClassification.from_pretrained(os.path.join(out, "attributes")).eval()
    folded = AutoModelForSequenceClassification.from_pretrained(out).eval()
    assert attributes.config.num_labels == 3 and folded.config.num_labels == 1
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(4)])
    with torch.no_grad():
        per_attribute = attributes(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        reward = folded(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, 0]
    torch.testing.assert_close(reward, per_attribute @ torch.tensor([0.5, 0.5, -0.25]), atol=1e-5, rtol=0)
    meta = json.load(open(os.path.join(out, "config.json")))["rm_trl"]
    assert meta["loss"]["attribute_weights"] == [0.5, 0.5, -0.25]


@pytest.mark.parametrize("loss_type", ["infonce", "margin_ranking"])
def test_contrastive_learns(tiny_llama, tmp_path, loss_type):
    from .conftest import learnable_pairs

    model, tokenizer = tiny_llama
    args = ContrastiveRewardConfig(**common_args(tmp_path, num_train_epochs=2, loss_type=loss_type))
    trainer = ContrastiveRewardTrainer(
        model=model,
        args=args,
        processing_class=tokenizer,
        train_dataset=Dataset.from_list(learnable_pairs(96)),
        eval_dataset=Dataset.from_list(learnable_pairs(32, seed=5)),
    )
    before = trainer.evaluate()
    trainer.train()
    after = trainer.evaluate()
    assert after["eval_loss"] < before["eval_loss"] and after["eval_accuracy"] >= 0.9
    assert trainer.loss_description()["type"] == loss_type


def test_repeated_responses_are_averaged_when_ranking_ratings():
    rows = [
        {"prompt": "A", "response": " same", "score": 1.0},
        {"prompt": "A", "response": " same", "score": 3.0},  # another system produced the same text
        {"prompt": "A", "response": " other", "score": 0.0},
    ]
    ranked, stats = rated_to_ranked(Dataset.from_list(rows))
    assert ranked.to_list() == [
        {"prompt": "A", "completions": [" same", " other"], "ranks": [0, 1], "scores": [2.0, 0.0]}
    ]
    assert stats["repeated_responses_averaged"] == 1
