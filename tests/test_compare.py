"""`recipes/compare.py` and `rm_trl.compare`: seeds, the learning rate chosen on the eval split (never the test split),
early stopping that exports the best checkpoint, the length-only baseline and the paired tests.

Trainings run in this process (`launch` replaced) on a tiny Llama, so the whole flow stays fast; the child process
itself is exercised by `tests/test_evaluation.py::test_compare_recipe_one_row_per_run`.
"""

from __future__ import annotations

import glob
import importlib.util
import json
import os
import time

import numpy as np
import pytest
import torch
import yaml
from datasets import Dataset

from rm_trl.compare import child, choose_learning_rate, paired_comparison, plan_runs, runs, train_candidate
from rm_trl.compare.significance import correct_pairs, load_items, save_items
from rm_trl.data.formats import ScoredRows
from rm_trl.errors import ConfigError
from rm_trl.evaluation import evaluate_dataset, evaluate_items, evaluate_length_baseline
from rm_trl.metrics import correlation
from rm_trl.recipe import parse
from rm_trl.scoring import RewardScorer
from rm_trl.trainers import FAMILIES

from .conftest import REPO_ROOT, learnable_pairs, make_tiny_llama

_spec = importlib.util.spec_from_file_location("compare_recipe", os.path.join(REPO_ROOT, "recipes", "compare.py"))
compare_recipe = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(compare_recipe)


def in_process(command: list[str], log_path: str) -> dict[str, float]:
    """`runs.launch` without a process: the same child entry point, called here."""
    assert command[1:3] == ["-m", "rm_trl.compare.child"]
    threads, start = torch.get_num_threads(), time.perf_counter()
    try:
        assert child.main(command[3:]) == 0
    finally:
        torch.set_num_threads(threads)  # `cpu_threads` below must not outlive the training
    return {"train_seconds": time.perf_counter() - start, "peak_rss_mb": 0.0}


def write_jsonl(rows: list[dict], path) -> str:
    with open(path, "w") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
    return str(path)


def swapped(rows: list[dict]) -> list[dict]:
    return [{**r, "chosen": r["rejected"], "rejected": r["chosen"]} for r in rows]


@pytest.fixture
def tiny_base(llama_tokenizer, tmp_path) -> str:
    """A tiny Llama whose initial rewards rank the learnable pairs at about chance (seed 2: accuracy ~0.45)."""
    path = tmp_path / "base"
    make_tiny_llama(llama_tokenizer, seed=2).save_pretrained(path)
    llama_tokenizer.save_pretrained(path)
    return str(path)


def comparison_config(tmp_path, base: str, **base_settings) -> dict:
    return {
        "name": "tiny",
        "output_dir": str(tmp_path / "cmp"),
        "test_data": write_jsonl(learnable_pairs(48, seed=2), tmp_path / "test.jsonl"),
        "base": {
            "model_name_or_path": base,
            "train_data": write_jsonl(learnable_pairs(96), tmp_path / "train.jsonl"),
            "max_length": 48,
            "per_device_train_batch_size": 8,
            "report_to": "none",
            "disable_tqdm": True,
            "logging_steps": 2,
            "cpu_threads": 1,  # tiny models: one thread is as fast, and much faster on a shared machine
            **base_settings,
        },
        "runs": [{"name": "bt", "family": "pairwise"}],
    }


def test_seeds_and_learning_rate_chosen_on_eval_never_on_test(tiny_base, tmp_path, monkeypatch):
    """Eval pairs are swapped: the model that learns (3e-3) is worst on eval and best on test. The recipe must pick
    the other one (1e-6) on every seed, sweeping on seed 1 only, and score the test set for chosen models only."""
    monkeypatch.setattr(runs, "launch", in_process)
    eval_path = write_jsonl(swapped(learnable_pairs(48, seed=1)), tmp_path / "eval_swapped.jsonl")
    config = comparison_config(tmp_path, tiny_base, eval_data=eval_path, max_steps=8, learning_rates=[3e-3, 1e-6])
    config["seeds"] = [1, 2]
    (tmp_path / "cmp.yaml").write_text(yaml.safe_dump(config))
    summary = compare_recipe.main(["--config", str(tmp_path / "cmp.yaml"), "--bootstrap_samples", "100"])

    out = tmp_path / "cmp" / "bt"
    assert sorted(os.listdir(out / "seed-1")) == ["eval", "lr-0.003", "lr-1e-06", "result.json", "test_items.json"]
    assert sorted(d for d in os.listdir(out / "seed-2") if d.startswith("lr-")) == ["lr-1e-06"]  # choice reused
    candidates = json.load(open(out / "seed-1" / "result.json"))["candidates"]
    eval_values = {float(lr): c["eval_headline"] for lr, c in candidates.items()}
    assert eval_values[1e-6] > eval_values[3e-3] + 0.2  # the sweep tells them apart on eval
    row = summary["runs"]["bt"]
    assert row["learning_rates"] == {"1": 1e-6, "2": 1e-6}
    assert set(row["seeds"]) == {"1", "2"} and row["interval_kind"] == "t over 2 seeds"
    # by test accuracy the other learning rate would have won: the choice did not look at the test set
    test = Dataset.from_list(learnable_pairs(48, seed=2))
    on_test = {
        lr: evaluate_dataset(RewardScorer.from_pretrained(str(out / "seed-1" / f"lr-{lr:g}")), test).metrics["accuracy"]
        for lr in (3e-3, 1e-6)
    }
    assert on_test[3e-3] > on_test[1e-6] + 0.2
    seed_means = [row["seeds"][s]["metrics"]["accuracy"] for s in ("1", "2")]
    assert row["metrics"]["accuracy"] == pytest.approx(np.mean(seed_means))
    assert [(p["run"], p["versus"]) for p in summary["paired"]] == [("bt", "length only")]
    assert len(summary["paired"][0]["mcnemar"]) == 2  # one McNemar test per seed

    # the outputs come back from the saved runs without training or scoring anything
    monkeypatch.setattr(runs, "launch", lambda *a: pytest.fail("trained again"))
    again = compare_recipe.main(["--config", str(tmp_path / "cmp.yaml"), "--table_only", "--bootstrap_samples", "100"])
    assert again["runs"]["bt"]["metrics"] == row["metrics"]
    assert "| bt | pairwise | bradley_terry | 1e-06 |" in open(tmp_path / "cmp" / "comparison.md").read()


def test_early_stopping_stops_before_the_cap_and_exports_the_best_checkpoint(tiny_base, tmp_path, monkeypatch):
    monkeypatch.setattr(runs, "launch", in_process)
    eval_path = write_jsonl(learnable_pairs(32, seed=1), tmp_path / "eval.jsonl")
    config = comparison_config(
        tmp_path, tiny_base, eval_data=eval_path, max_steps=60, eval_steps=2, early_stopping_patience=2
    )
    config["base"]["save_total_limit"] = 10  # keep every checkpoint, to compare the export with them
    (plan,) = plan_runs(config)
    directory = str(tmp_path / "run")
    state = train_candidate(plan, seed=1, learning_rate=3e-3, directory=directory)

    assert state["metric"] == "eval_accuracy"  # `metric_for_best_model: headline`, resolved by the trainer
    assert state["global_step"] < 60  # eval accuracy reaches its best and stalls long before the cap
    assert state["best_step"] < state["global_step"]
    values = {e["step"]: e["value"] for e in state["evaluations"]}
    assert values[state["best_step"]] == max(values.values()) == state["best_metric"]
    assert all(v <= state["best_metric"] for s, v in values.items() if s > state["best_step"])

    texts = learnable_pairs(16, seed=5)
    prompts, responses = [r["prompt"] for r in texts], [r["chosen"] for r in texts]

    def rewards(path: str) -> np.ndarray:
        return RewardScorer.from_pretrained(path).score_texts(prompts, responses)

    exported = rewards(directory)
    best = rewards(os.path.join(directory, f"checkpoint-{state['best_step']}"))
    last = rewards(os.path.join(directory, f"checkpoint-{state['global_step']}"))
    np.testing.assert_allclose(exported, best, atol=1e-5)
    assert np.abs(exported - last).max() > 1e-3  # training went on after the best step: the export is not the last


def test_choose_learning_rate():
    assert choose_learning_rate({1e-5: 0.61, 3e-5: 0.64, 1e-4: 0.62}) == 3e-5
    assert choose_learning_rate({1e-5: 0.6, 3e-5: 0.6}) == 1e-5  # a tie: the one listed first
    assert choose_learning_rate({1e-5: float("nan"), 3e-5: 0.1}) == 3e-5  # NaN never wins
    assert choose_learning_rate({2e-5: None}) == 2e-5  # nothing to choose
    with pytest.raises(RuntimeError):
        choose_learning_rate({1e-5: None, 3e-5: float("nan")})


def pairwise_result(raw: Dataset, correct: np.ndarray, rng: np.random.Generator) -> object:
    """An evaluation of `raw` whose pair `i` is ranked right exactly where `correct[i]`."""
    margin = np.where(correct, 1.0, -1.0) * rng.uniform(0.1, 2.0, len(correct))
    rewards = [np.array([m / 2, -m / 2]) for m in margin]
    lengths = [np.array([5, 5]) for _ in margin]
    return evaluate_items(ScoredRows(raw, np.arange(len(raw)), rewards, lengths), "pairwise", bootstrap_samples=0)


def test_paired_comparison_of_a_run_with_itself_and_with_a_clearly_worse_one():
    rng = np.random.default_rng(0)
    raw = Dataset.from_list(learnable_pairs(300))
    good = [pairwise_result(raw, rng.random(300) < 0.85, rng) for _ in range(3)]  # 3 seeds
    worse = [pairwise_result(raw, rng.random(300) < 0.55, rng) for _ in range(3)]

    same = paired_comparison(good, good, resamples=200)
    assert same["items"]["estimate"] == 0 and same["items"]["p_value"] == 1.0
    assert same["seeds"]["estimate"] == 0 and same["seeds"]["p_value"] == 1.0
    assert [t["p_value"] for t in same["mcnemar"]] == [1.0, 1.0, 1.0]
    assert all(t["a_only"] == t["b_only"] == 0 for t in same["mcnemar"])

    better = paired_comparison(good, worse, resamples=200)
    expected = np.mean([g.metrics["accuracy"] - w.metrics["accuracy"] for g, w in zip(good, worse)])
    assert better["items"]["estimate"] == pytest.approx(expected) and expected > 0.2
    assert better["items"]["low"] > 0 and better["items"]["p_value"] < 0.01
    assert better["seeds"]["low"] > 0  # the paired t interval over the 3 seeds excludes zero too
    assert all(t["p_value"] < 1e-3 and t["a_only"] > t["b_only"] for t in better["mcnemar"])
    assert paired_comparison(worse, good, resamples=200)["items"]["high"] < 0  # and the other way round


def test_paired_comparison_resamples_prompts_and_skips_mcnemar_for_correlations():
    rng = np.random.default_rng(1)
    rows = [{"prompt": f"p{i // 4}", "response": f"r{i}", "score": float(rng.normal())} for i in range(120)]
    raw = Dataset.from_list(rows)
    gold = np.array(raw["score"])

    def rated(noise: float) -> object:
        rewards = [np.array([g + rng.normal(0, noise)]) for g in gold]
        items = ScoredRows(raw, np.arange(len(raw)), rewards, [np.array([3])] * len(raw))
        return evaluate_items(items, "rated", bootstrap_samples=0)

    close, noisy = rated(0.3), rated(3.0)
    result = paired_comparison([close], [noisy], resamples=200)
    assert result["metric"] == "spearman" and result["resampled"] == "prompts"
    assert result["mcnemar"] is None and result["seeds"] is None  # a correlation, one seed
    assert result["items"]["estimate"] == pytest.approx(close.metrics["spearman"] - noisy.metrics["spearman"])
    assert result["items"]["low"] > 0


def test_correct_pairs_of_ranked_lists():
    raw = Dataset.from_list(
        [
            {"prompt": "a", "completions": ["x", "y", "z"], "ranks": [0, 1, 1]},
            {"prompt": "b", "completions": ["u", "v"], "ranks": [1, 0]},
        ]
    )
    rewards = [np.array([3.0, 1.0, 2.0]), np.array([0.5, 0.5])]
    items = ScoredRows(raw, np.arange(2), rewards, [np.array([1, 1, 1]), np.array([1, 1])])
    # list 0: x>y right, x>z right (y, z tied: no pair); list 1: v>u is a reward tie, counted wrong
    assert correct_pairs(items, np.arange(2)).tolist() == [True, True, False]


def test_length_baseline_scores_response_lengths_like_a_model():
    pairs = Dataset.from_list(
        [
            {"prompt": "q", "chosen": " a long answer", "rejected": " short"},
            {"prompt": "q", "chosen": " ok", "rejected": " a longer one"},
            {"prompt": "q", "chosen": " four", "rejected": " five"},  # equal lengths: a tie, counted wrong
        ]
    )
    assert evaluate_length_baseline(pairs, bootstrap_samples=0).metrics["accuracy"] == pytest.approx(1 / 3)
    rated = Dataset.from_list(
        [{"prompt": "q", "response": " " + "x" * n, "score": s} for n, s in [(3, 1), (9, 2), (5, 4)]]
    )
    result = evaluate_length_baseline(rated, bootstrap_samples=0)
    assert result.metrics["spearman"] == pytest.approx(correlation([4, 10, 6], [1, 2, 4], "spearman"))


def test_items_round_trip(tmp_path):
    rng = np.random.default_rng(2)
    raw = Dataset.from_list(learnable_pairs(40))
    result = pairwise_result(raw, rng.random(40) < 0.7, rng)
    save_items(result, tmp_path / "items.json")
    loaded = load_items(tmp_path / "items.json", raw)
    assert loaded.metrics["accuracy"] == result.metrics["accuracy"]
    assert paired_comparison([loaded], [result], resamples=50)["items"]["p_value"] == 1.0


CONFIGS = sorted(glob.glob(os.path.join(REPO_ROOT, "recipes", "configs", "compare_*.yaml")))


@pytest.mark.parametrize("path", CONFIGS, ids=[os.path.basename(p) for p in CONFIGS])
def test_compare_configs(path, tmp_path):
    """Every shipped comparison plans, and every training it implies parses as its family's recipe config (so a
    typo or an early-stopping setting transformers refuses fails here, not hours into a run)."""
    config = yaml.safe_load(open(path))
    plans = plan_runs(config)
    seeds = config["seeds"]
    demo = "demo" in os.path.basename(path)
    assert len(seeds) >= (2 if demo else 3)
    for plan in plans:
        assert len(plan.learning_rates) >= 2 and plan.early_stopping_patience
        settings = plan.candidate_settings(seeds[0], plan.learning_rates[0], str(tmp_path / plan.name))
        assert settings.get("max_steps", 0) > 0 or settings.get("num_train_epochs", 0) > 0  # the cap
        (tmp_path / "run.yaml").write_text(yaml.safe_dump(settings))
        family = FAMILIES[plan.family]
        _, training_args, _ = parse(
            family.config_class, argv=["--config", str(tmp_path / "run.yaml")], family=plan.family
        )
        assert training_args.load_best_model_at_end and training_args.metric_for_best_model == "headline"
        assert training_args.learning_rate == plan.learning_rates[0] and training_args.seed == seeds[0]


def test_a_sweep_needs_an_eval_split_that_is_not_the_test_split(tmp_path):
    config = comparison_config(tmp_path, "model", learning_rates=[1e-5, 1e-4])
    with pytest.raises(ConfigError, match="eval_data or eval_fraction"):
        plan_runs(config)
    config["base"]["eval_data"] = config["test_data"]
    with pytest.raises(ConfigError, match="test split"):
        plan_runs(config)
    config["base"].update(eval_data=None, eval_fraction=0.1)
    assert plan_runs(config)[0].learning_rates == (1e-5, 1e-4)
