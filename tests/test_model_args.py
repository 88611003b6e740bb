"""A model trained from scratch (`model_type` + `config_overrides` + `tokenizer_name`, as transformers' run_clm.py):
the settings, their refusals, and `rm-trl train` from an empty folder giving a plain-transformers export."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from rm_trl.config import PairwiseRewardConfig
from rm_trl.errors import ConfigError
from rm_trl.model_args import RewardModelConfig, build_from_scratch
from rm_trl.recipe import parse
from rm_trl.scoring import RewardScorer

from .test_entry_points import QUICK, assert_user_error, pairs_file, rm_trl_train  # noqa: F401 (fixture)

DATA = ["--train_data", "x"]
OVERRIDES = "hidden_size=32,intermediate_size=64,num_hidden_layers=1,num_attention_heads=2,num_key_value_heads=2"


def test_settings_and_refusals(minilm_path):
    _, _, model_args = parse(
        PairwiseRewardConfig,
        None,
        [
            "--model_type",
            "llama",
            "--tokenizer_name",
            minilm_path,
            "--config_overrides",
            OVERRIDES,
            "--train_data",
            "x",
        ],
    )
    assert model_args.model_type == "llama" and not model_args.model_name_or_path
    with pytest.raises(ConfigError, match="not both"):
        parse(
            PairwiseRewardConfig,
            None,
            ["--model_type", "llama", "--tokenizer_name", "t", "--model_name_or_path", "m", *DATA],
        )
    with pytest.raises(ConfigError, match="needs `tokenizer_name`"):
        parse(PairwiseRewardConfig, None, ["--model_type", "llama", "--train_data", "x"])
    with pytest.raises(ConfigError, match="only apply with `model_type`"):
        parse(
            PairwiseRewardConfig,
            None,
            ["--model_name_or_path", "m", "--config_overrides", "hidden_size=8", "--train_data", "x"],
        )
    with pytest.raises(ConfigError, match="no LoRA"):
        parse(
            PairwiseRewardConfig,
            None,
            ["--model_type", "llama", "--tokenizer_name", "t", "--use_peft", "true", "--train_data", "x"],
        )
    with pytest.raises(ConfigError, match="not a transformers architecture"):
        build_from_scratch(RewardModelConfig(model_type="no-such-arch", tokenizer_name=minilm_path), num_labels=1)
    with pytest.raises(ConfigError, match="config_overrides"):
        build_from_scratch(
            RewardModelConfig(model_type="llama", tokenizer_name=minilm_path, config_overrides="no_such_key=3"),
            num_labels=1,
        )


def test_built_model_has_the_tokenizers_vocabulary_and_is_seeded(minilm_path):
    args = RewardModelConfig(model_type="llama", tokenizer_name=minilm_path, config_overrides=OVERRIDES)
    torch.manual_seed(0)
    model, tokenizer = build_from_scratch(args, num_labels=3)
    assert model.config.vocab_size == len(tokenizer) and model.config.hidden_size == 32
    assert model.config.num_labels == 3 and model.config.pad_token_id == tokenizer.pad_token_id
    torch.manual_seed(0)
    again, _ = build_from_scratch(args, num_labels=3)
    for a, b in zip(model.parameters(), again.parameters()):
        assert torch.equal(a, b)


def test_rm_trl_train_from_scratch_from_an_empty_folder(minilm_path, pairs_file, tmp_path):  # noqa: F811
    out = tmp_path / "scratch"
    flags = ["--model_type", "llama", "--tokenizer_name", minilm_path, "--config_overrides", OVERRIDES]
    proc = rm_trl_train(*flags, "--train_data", pairs_file, "--output_dir", out, "--max_steps", 3, *QUICK, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == "llama" and config["hidden_size"] == 32
    assert "from scratch" in config["rm_trl"]["base_model"]
    tokenizer = AutoTokenizer.from_pretrained(out)
    model = AutoModelForSequenceClassification.from_pretrained(out).eval()
    texts = ["Question 1 about tea: great helpful", "Question 2 about rain: awful rude"]
    with torch.no_grad():
        plain = [model(**tokenizer(t, return_tensors="pt")).logits[0, 0].item() for t in texts]
    scored = RewardScorer.from_pretrained(str(out)).score_texts(
        ["Question 1 about tea:", "Question 2 about rain:"], [" great helpful", " awful rude"]
    )
    np.testing.assert_allclose(plain, scored, atol=1e-5)
    assert os.path.isfile(out / "README.md")
    proc = rm_trl_train("--model_type", "llama", "--train_data", pairs_file, cwd=tmp_path, check=False)
    assert_user_error(proc, "tokenizer_name")
