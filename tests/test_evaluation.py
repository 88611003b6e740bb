"""Evaluation metrics against hand-computed cases, scoring invariance, report files, and the evaluate / compare
recipes on tiny models."""

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import yaml
from datasets import Dataset

from rm_trl import PairwiseRewardConfig, PairwiseRewardTrainer
from rm_trl.eval_report import write_eval_report
from rm_trl.evaluation import (
    affine_fit_errors,
    bootstrap_interval,
    calibration,
    evaluate_dataset,
    pairwise_accuracy,
    ranked_group_metrics,
)
from rm_trl.scoring import RewardScorer, length_sorted_batches

from .conftest import REPO_ROOT, learnable_pairs
from .test_families import ranked_rows, rated_rows


# ----- metrics on hand-computed cases ---------------------------------------------------------------------------------
def test_pairwise_accuracy_counts_ties_as_wrong():
    assert pairwise_accuracy(np.array([1.0, 2.0, 0.5, 3.0]), np.array([0.0, 2.0, 1.0, 1.0])) == 0.5


def test_calibration_hand_case():
    # Differences 0 (p = 0.5: confidence 0.5, wrong), ln 3 (p = 0.75, right), -ln 3 (p = 0.25: confidence 0.75, wrong)
    chosen = np.array([0.0, math.log(3), 0.0])
    rejected = np.array([0.0, 0.0, math.log(3)])
    out = calibration(chosen, rejected, bins=5)
    bins = {tuple(b["bin"]): b for b in out["curve"]}
    assert bins[(0.5, 0.6)]["accuracy"] == 0.0 and bins[(0.5, 0.6)]["confidence"] == pytest.approx(0.5)
    assert bins[(0.7, 0.8)]["accuracy"] == 0.5 and bins[(0.7, 0.8)]["count"] == 2
    # ECE = 1/3 * |0 - 0.5| + 2/3 * |0.5 - 0.75|
    assert out["ece"] == pytest.approx(1 / 3 * 0.5 + 2 / 3 * 0.25)


def test_affine_fit_errors():
    rewards = np.array([0.0, 1.0, 2.0, 3.0])
    exact = affine_fit_errors(rewards, 2 * rewards + 5)
    assert exact["mae"] == pytest.approx(0, abs=1e-9) and exact["fit_slope"] == pytest.approx(2)
    noisy = affine_fit_errors(rewards, np.array([0.0, 1.0, 0.0, 1.0]))  # best line: 0.2 r + 0.2
    residuals = np.array([0.0, 1.0, 0.0, 1.0]) - (0.2 * rewards + 0.2)
    assert noisy["rmse"] == pytest.approx(np.sqrt(np.mean(residuals**2)))
    assert noisy["mae"] == pytest.approx(np.mean(np.abs(residuals)))


def test_ranked_group_metrics_hand_case():
    rewards = np.array([0.9, 0.1, 0.5])
    ranks = np.array([1.0, 0.0, 2.0])  # best is the second response, which got the lowest reward
    out = ranked_group_metrics([(rewards, ranks)])
    # pairs: (1 > 0) wrong, (1 > 2) wrong, (0 > 2) right
    assert out["pair_accuracy"] == pytest.approx(1 / 3) and out["top1_accuracy"] == 0.0
    gains = {0: 1.0, 1: 2.0, 2: 0.0}  # relevance = max rank - rank
    dcg = gains[0] / np.log2(2) + gains[2] / np.log2(3) + gains[1] / np.log2(4)  # ordered by reward: 0, 2, 1
    ideal = 2.0 / np.log2(2) + 1.0 / np.log2(3)
    assert out["ndcg"] == pytest.approx(dcg / ideal)
    assert out["kendall_tau"] == pytest.approx(-1 / 3)


def test_bootstrap_interval_brackets_the_estimate():
    values = np.random.default_rng(0).random(200) > 0.3
    low, high = bootstrap_interval(len(values), lambda i: values[i].mean(), samples=300)
    assert low < values.mean() < high and high - low < 0.2


def test_length_sorted_batches_cover_rows_within_budget():
    lengths = [5, 50, 7, 300, 12, 49, 1]
    sizes = [2, 2, 3, 2, 2, 2, 4]
    batches = length_sorted_batches(lengths, sizes, batch_tokens=200, max_rows=3)
    assert sorted(i for b in batches for i in b) == list(range(7))
    for b in batches:
        assert len(b) <= 3
        assert len(b) == 1 or sum(sizes[i] for i in b) * max(lengths[i] for i in b) <= 200
    assert batches[0] == [3]  # the longest row alone


# ----- scoring and evaluation end to end ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained_pairwise(tmp_path_factory, smol_tokenizer_dir):
    from transformers import AutoTokenizer

    from .conftest import make_tiny_llama

    tokenizer = AutoTokenizer.from_pretrained(smol_tokenizer_dir)
    tokenizer.pad_token = None
    out = tmp_path_factory.mktemp("pairwise_model")
    args = PairwiseRewardConfig(
        output_dir=str(out),
        num_train_epochs=2,
        learning_rate=3e-3,
        per_device_train_batch_size=8,
        max_length=48,
        report_to="none",
        save_strategy="no",
        disable_tqdm=True,
    )
    trainer = PairwiseRewardTrainer(
        model=make_tiny_llama(tokenizer),
        args=args,
        processing_class=tokenizer,
        train_dataset=Dataset.from_list(learnable_pairs(96)),
    )
    trainer.train()
    trainer.save_reward_model()
    return str(out)


def test_scores_do_not_depend_on_batch_size(trained_pairwise):
    rows = learnable_pairs(40, seed=9)
    for i, row in enumerate(rows):
        row["subset"] = "a" if i % 3 else "b"
    data = Dataset.from_list(rows)
    small = evaluate_dataset(
        RewardScorer.from_pretrained(trained_pairwise, batch_tokens=40), data, bootstrap_samples=50
    )
    large = evaluate_dataset(
        RewardScorer.from_pretrained(trained_pairwise, batch_tokens=100_000), data, bootstrap_samples=50
    )
    assert small.metrics.keys() == large.metrics.keys()
    for key in small.metrics:
        assert small.metrics[key] == pytest.approx(large.metrics[key], abs=1e-5, nan_ok=True), key
    assert small.metrics["accuracy"] == large.metrics["accuracy"] >= 0.8
    assert set(small.subsets) == {"a", "b"} and small.subsets["b"]["count"] == 14
    total = sum(s["accuracy"] * s["count"] for s in small.subsets.values()) / 40
    assert total == pytest.approx(small.metrics["accuracy"])  # row-weighted total = overall accuracy


def test_scoring_matches_training_eval(trained_pairwise):
    """The scorer (sorted, token-budget batches) gives the rewards of a plain batched forward of the export."""
    import torch
    from transformers import AutoModelForSequenceClassification

    scorer = RewardScorer.from_pretrained(trained_pairwise, batch_tokens=64)
    scored = scorer.score(Dataset.from_list(learnable_pairs(10, seed=4)))
    model = AutoModelForSequenceClassification.from_pretrained(trained_pairwise).eval()
    batch = scorer.collator(list(scored.prepared.dataset))
    with torch.no_grad():
        plain = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, 0]
    np.testing.assert_allclose(np.concatenate(scored.scalar_rewards()), plain.numpy(), atol=1e-5)


def test_report_files_for_each_kind(trained_pairwise, tmp_path):
    scorer = RewardScorer.from_pretrained(trained_pairwise)
    datasets = {
        "pairwise": Dataset.from_list(learnable_pairs(20, seed=3)),
        "rated": Dataset.from_list(rated_rows(30)),
        "ranked": Dataset.from_list(ranked_rows(10)),
    }
    expected_plots = {
        "pairwise": {"reward_histogram.png", "reliability.png", "reward_vs_length.png"},
        "rated": {"predicted_vs_gold.png", "reward_vs_length.png"},
        "ranked": {"reward_histogram.png", "reward_vs_length.png"},
    }
    for kind, data in datasets.items():
        result = evaluate_dataset(scorer, data, bootstrap_samples=50)
        assert result.kind == kind
        write_eval_report(result, str(tmp_path / kind))
        files = set(os.listdir(tmp_path / kind))
        assert {"eval.json", "eval.md"} | expected_plots[kind] <= files
        saved = json.load(open(tmp_path / kind / "eval.json"))
        assert saved["metrics"] and saved["confidence_intervals_95"]
    rated = evaluate_dataset(scorer, datasets["rated"], bootstrap_samples=50).metrics
    assert {"pearson", "spearman", "kendall", "mae", "rmse", "pair_accuracy"} <= set(rated)
    ranked = evaluate_dataset(scorer, datasets["ranked"], bootstrap_samples=50).metrics
    assert {"pair_accuracy", "top1_accuracy", "ndcg", "kendall_tau"} <= set(ranked)


def run(cmd, cwd=REPO_ROOT):
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def test_evaluate_recipe_key_value_cli(trained_pairwise, tmp_path):
    Dataset.from_list(learnable_pairs(24, seed=6)).to_json(tmp_path / "test.jsonl")
    stdout = run(
        [
            sys.executable,
            os.path.join(REPO_ROOT, "recipes", "evaluate.py"),
            f"model={trained_pairwise}",
            f"data={tmp_path / 'test.jsonl'}",
            f"output_dir={tmp_path / 'eval'}",
            "bootstrap_samples=50",
        ]
    )
    assert "| accuracy |" in stdout and "report " in stdout
    assert {"eval.md", "eval.json", "reliability.png"} <= set(os.listdir(tmp_path / "eval"))


def test_compare_recipe_one_row_per_run(tiny_llama, tmp_path):
    model, tokenizer = tiny_llama
    model.save_pretrained(tmp_path / "base")
    tokenizer.save_pretrained(tmp_path / "base")
    Dataset.from_list(rated_rows(64)).to_json(tmp_path / "train.jsonl")
    Dataset.from_list(rated_rows(24, seed=1)).to_json(tmp_path / "test.jsonl")
    config = {
        "name": "tiny comparison",
        "output_dir": str(tmp_path / "cmp"),
        "test_data": str(tmp_path / "test.jsonl"),
        "base": {
            "model_name_or_path": str(tmp_path / "base"),
            "train_data": str(tmp_path / "train.jsonl"),
            "max_length": 48,
            "max_steps": 4,
            "learning_rate": 3.0e-3,
            "per_device_train_batch_size": 8,
            "report_to": "none",
            "save_strategy": "no",
            "disable_tqdm": True,
        },
        "runs": [
            {"name": "mse", "family": "pointwise", "loss_type": "mse"},
            {"name": "huber", "family": "pointwise", "loss_type": "huber"},
            {"name": "bt-from-ratings", "family": "pairwise", "source_format": "rated"},
            {"name": "listwise", "family": "listwise", "source_format": "rated", "loss_type": "plackett_luce"},
        ],
    }
    (tmp_path / "cmp.yaml").write_text(yaml.safe_dump(config))
    stdout = run(
        [
            sys.executable,
            os.path.join(REPO_ROOT, "recipes", "compare.py"),
            "--config",
            str(tmp_path / "cmp.yaml"),
            "--bootstrap_samples",
            "50",
        ]
    )
    summary = json.load(open(tmp_path / "cmp" / "comparison.json"))
    assert list(summary["runs"]) == ["mse", "huber", "bt-from-ratings", "listwise"]
    for row in summary["runs"].values():
        assert row["kind"] == "rated" and "spearman" in row["metrics"]
        assert row["train_seconds"] > 0 and row["peak_rss_mb"] > 100
    table = open(tmp_path / "cmp" / "comparison.md").read()
    assert table.count("| pointwise |") == 2 and "| bt-from-ratings | pairwise |" in table
    assert os.path.exists(tmp_path / "cmp" / "comparison.png") and "spearman" in stdout
