"""Every recipe end to end, in a subprocess, as a user launches it, on a tiny config."""

import ast
import json
import os
import subprocess
import sys

import pytest
import yaml
from datasets import Dataset

from .conftest import REPO_ROOT, learnable_pairs, make_tiny_llama
from .test_families import ranked_rows, rated_rows


def recipe(name: str) -> str:
    return os.path.join(REPO_ROOT, "recipes", f"{name}.py")


def run(cmd, cwd):
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def training_losses(stdout: str) -> list[float]:
    logs = [ast.literal_eval(line) for line in stdout.splitlines() if line.startswith("{'loss'")]
    return [float(entry["loss"]) for entry in logs]


@pytest.fixture
def tiny_model_dir(llama_tokenizer, tmp_path):
    path = tmp_path / "tiny-llama"
    make_tiny_llama(llama_tokenizer).save_pretrained(path)
    llama_tokenizer.save_pretrained(path)
    return path


FAMILIES = {
    # family: (train rows, eval rows, extra config, headline metric, minimum)
    "pairwise": (learnable_pairs(96, seed=3), learnable_pairs(32, seed=4), {}, "accuracy", 0.8),
    "pointwise": (rated_rows(96), rated_rows(32, seed=1), {"loss_type": "huber"}, "spearman", 0.5),
    "listwise": (ranked_rows(64), ranked_rows(32, seed=1), {"loss_type": "plackett_luce"}, "pair_accuracy", 0.7),
    "contrastive": (
        ranked_rows(96, k_range=(3, 5)),
        ranked_rows(32, seed=1, k_range=(3, 5)),
        {"pair_strategy": "best_vs_worst"},
        "accuracy",
        0.7,
    ),
}


@pytest.mark.parametrize("family", list(FAMILIES))
def test_recipe_on_a_tiny_config(family, tiny_model_dir, tmp_path):
    train_rows, eval_rows, extra, headline, minimum = FAMILIES[family]
    Dataset.from_list(train_rows).to_json(tmp_path / "train.jsonl")
    Dataset.from_list(eval_rows).to_json(tmp_path / "test.jsonl")
    config = {
        "model_name_or_path": str(tiny_model_dir),
        "train_data": str(tmp_path / "train.jsonl"),
        "eval_data": str(tmp_path / "test.jsonl"),
        "output_dir": str(tmp_path / "out"),
        "max_length": 48,
        "per_device_train_batch_size": 8,
        "learning_rate": 3.0e-3,
        "num_train_epochs": 3,
        "logging_steps": 4,
        "save_strategy": "no",
        "report_to": "none",
        "disable_tqdm": True,
        **extra,
    }
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(config))
    cmd = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--num_processes",
        "1",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        recipe(family),
        "--config",
        str(tmp_path / "tiny.yaml"),
        "--seed",
        "1",
    ]  # a CLI flag overrides the YAML
    stdout = run(cmd, cwd=tmp_path)
    assert f"saved  {tmp_path / 'out'}" in stdout
    value = float(stdout.split(f"eval   {headline} ")[1].split()[0])
    assert value >= minimum, stdout[-2000:]
    results = json.load(open(tmp_path / "out" / "eval_results.json"))
    assert abs(results[f"eval_{headline}"] - value) < 1e-4
    losses = training_losses(stdout)
    assert len(losses) >= 3 and losses[-1] < losses[0], losses
    assert os.path.exists(tmp_path / "out" / "model.safetensors")
    meta = json.load(open(tmp_path / "out" / "config.json"))["rm_trl"]
    assert meta["family"] == family
    report = json.load(open(tmp_path / "out" / "data_report.json"))
    if family == "contrastive":  # ranked lists became best-vs-worst pairs, and the report says so
        converted = report["train"]["settings"]["converted"]
        assert converted["from"] == "ranked" and converted["strategy"] == "best_vs_worst"
        assert report["train"]["rows_in"] == converted["rows_out"] == len(train_rows)


def test_recipe_without_config_uses_the_offline_demo(tmp_path):
    stdout = run(
        [
            sys.executable,
            recipe("pairwise"),
            "--max_train_samples",
            "32",
            "--max_eval_samples",
            "16",
            "--output_dir",
            str(tmp_path / "demo"),
            "--disable_tqdm",
            "true",
        ],
        cwd=REPO_ROOT,
    )
    assert "eval   accuracy" in stdout and "on 16 pairs" in stdout
    meta = json.load(open(tmp_path / "demo" / "config.json"))["rm_trl"]
    assert meta["base_model"] == "sentence-transformers/all-MiniLM-L6-v2"
