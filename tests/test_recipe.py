"""The pairwise recipe end to end, in a subprocess, as a user launches it."""

import json
import os
import subprocess
import sys

import yaml
from datasets import Dataset

from .conftest import REPO_ROOT, learnable_pairs, make_tiny_llama

RECIPE = os.path.join(REPO_ROOT, "recipes", "pairwise.py")


def run(cmd, cwd):
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", ACCELERATE_USE_CPU="1")
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def test_recipe_on_a_tiny_config(llama_tokenizer, tmp_path):
    model_dir = tmp_path / "tiny-llama"
    make_tiny_llama(llama_tokenizer).save_pretrained(model_dir)
    llama_tokenizer.save_pretrained(model_dir)
    Dataset.from_list(learnable_pairs(96, seed=3)).to_json(tmp_path / "train.jsonl")
    Dataset.from_list(learnable_pairs(32, seed=4)).to_json(tmp_path / "test.jsonl")
    config = {
        "model_name_or_path": str(model_dir),
        "train_data": str(tmp_path / "train.jsonl"),
        "eval_data": str(tmp_path / "test.jsonl"),
        "output_dir": str(tmp_path / "out"),
        "max_length": 48,
        "per_device_train_batch_size": 8,
        "learning_rate": 3.0e-3,
        "num_train_epochs": 2,
        "save_strategy": "no",
        "report_to": "none",
        "disable_tqdm": True,
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
        RECIPE,
        "--config",
        str(tmp_path / "tiny.yaml"),
        "--seed",
        "1",
    ]  # a CLI flag overrides the YAML
    stdout = run(cmd, cwd=tmp_path)
    assert "eval   accuracy" in stdout and f"saved  {tmp_path / 'out'}" in stdout
    accuracy = float(stdout.split("eval   accuracy ")[1].split()[0])
    assert accuracy >= 0.8
    results = json.load(open(tmp_path / "out" / "eval_results.json"))
    assert results["eval_accuracy"] == accuracy or abs(results["eval_accuracy"] - accuracy) < 1e-4
    assert os.path.exists(tmp_path / "out" / "model.safetensors")


def test_recipe_without_config_uses_the_offline_demo(tmp_path):
    stdout = run(
        [
            sys.executable,
            RECIPE,
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
