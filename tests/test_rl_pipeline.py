"""Into RL pipelines: reward normalisation at export, `rm-trl score`, TRL GRPO / RLOO (the server: test_serve.py)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from datasets import Dataset
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from rm_trl import PairwiseRewardTrainer
from rm_trl.scoring import RewardScorer

from .conftest import REPO_ROOT, learnable_pairs, make_tiny_llama, tiny_pairwise_config
from .consumer_models import make_policy


def train_rm(model, tokenizer, output_dir, **config):
    args = tiny_pairwise_config(output_dir, **{"max_steps": -1, "num_train_epochs": 2, **config})
    data = Dataset.from_list(learnable_pairs(64))
    trainer = PairwiseRewardTrainer(
        model=model,
        args=args,
        processing_class=tokenizer,
        train_dataset=data,
        eval_dataset=Dataset.from_list(learnable_pairs(32, seed=7)),
    )
    trainer.train()
    return trainer.save_reward_model()


@pytest.fixture(scope="module")
def rm_dir(tmp_path_factory, smol_tokenizer_dir):
    """A tiny decoder reward model that appends EOS (the default for decoders)."""
    tokenizer = AutoTokenizer.from_pretrained(smol_tokenizer_dir)
    tokenizer.pad_token = None
    return train_rm(make_tiny_llama(tokenizer), tokenizer, tmp_path_factory.mktemp("rm"))


# ----- normalisation ------------------------------------------------------------------------------------------------
def test_normalisation_is_baked_into_an_encoder_head(minilm_path, tmp_path):
    model = AutoModelForSequenceClassification.from_pretrained(minilm_path, num_labels=1)
    out = train_rm(
        model, AutoTokenizer.from_pretrained(minilm_path), tmp_path, normalize_rewards=True, learning_rate=5e-5
    )
    meta = json.load(open(os.path.join(out, "config.json")))["rm_trl"]
    assert meta["normalization"]["applied"] == "baked_into_head"
    rewards = np.concatenate(
        RewardScorer.from_pretrained(out).score(Dataset.from_list(learnable_pairs(32, seed=7))).scalar_rewards()
    )
    assert abs(rewards.mean()) < 1e-3 and abs(rewards.std() - 1) < 1e-3  # plain forward: already normalised
    assert "baked into the head" in open(os.path.join(out, "README.md")).read()


def test_normalisation_is_stored_for_a_decoder_head(tiny_llama, tmp_path):
    model, tokenizer = tiny_llama
    out = train_rm(model, tokenizer, tmp_path, normalize_rewards=True)
    meta = json.load(open(os.path.join(out, "config.json")))["rm_trl"]
    assert meta["normalization"]["applied"] == "stored"
    data = Dataset.from_list(learnable_pairs(32, seed=7))
    raw = np.concatenate(RewardScorer.from_pretrained(out).score(data).scalar_rewards())
    normed = np.concatenate(RewardScorer.from_pretrained(out, normalize=True).score(data).scalar_rewards())
    assert abs(raw.mean() - meta["normalization"]["mean"]) < 1e-4
    assert abs(normed.mean()) < 1e-3 and abs(normed.std() - 1) < 1e-3


# ----- rm-trl score -------------------------------------------------------------------------------------------------
def cli(*args):
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    proc = subprocess.run(
        [sys.executable, "-m", "rm_trl.cli", *args], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_score_cli_every_format(rm_dir, tmp_path):
    pairs = learnable_pairs(6, seed=2)
    pairs[3]["chosen"] = "  "  # invalid: kept in the output, marked, counted
    Dataset.from_list(pairs).to_json(tmp_path / "pairs.jsonl")
    proc = cli(
        "score",
        "--model",
        rm_dir,
        "--input",
        str(tmp_path / "pairs.jsonl"),
        "--output",
        str(tmp_path / "out.jsonl"),
        "--invalid_rows",
        "skip",
        "--quiet",
    )
    rows = [json.loads(line) for line in open(tmp_path / "out.jsonl")]
    assert len(rows) == 6 and "reward_error" in rows[3] and "scored 5/6 rows" in proc.stderr
    scorer = RewardScorer.from_pretrained(rm_dir)
    offline = scorer.score_texts([pairs[0]["prompt"]] * 2, [pairs[0]["chosen"], pairs[0]["rejected"]])
    assert rows[0]["reward_chosen"] == pytest.approx(offline[0], abs=1e-5)
    assert rows[0]["preference_probability"] == pytest.approx(1 / (1 + np.exp(offline[1] - offline[0])), abs=1e-5)

    Dataset.from_list([{"prompt": "Q:", "response": " great help"}]).to_json(tmp_path / "rated.jsonl")
    cli("score", "--model", rm_dir, "--input", str(tmp_path / "rated.jsonl"), "--output", str(tmp_path / "r.jsonl"))
    assert json.loads(open(tmp_path / "r.jsonl").read())["reward"] == pytest.approx(
        scorer.score_texts(["Q:"], [" great help"])[0], abs=1e-5
    )
    Dataset.from_list([{"prompt": "Q:", "completions": [" great", " awful", " fine"], "ranks": [0, 2, 1]}]).to_json(
        tmp_path / "ranked.jsonl"
    )
    cli("score", "--model", rm_dir, "--input", str(tmp_path / "ranked.jsonl"), "--output", str(tmp_path / "k.jsonl"))
    assert len(json.loads(open(tmp_path / "k.jsonl").read())["rewards"]) == 3


# ----- TRL GRPO / RLOO ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def policy_dir(tmp_path_factory, smol_tokenizer_dir):
    return make_policy(str(tmp_path_factory.mktemp("policy")), smol_tokenizer_dir)


@pytest.fixture(scope="module")
def trl_rm_dir(tmp_path_factory, smol_tokenizer_dir):
    """A reward model trained in TRL's own format: no special tokens, no EOS appended."""
    tokenizer = AutoTokenizer.from_pretrained(smol_tokenizer_dir)
    tokenizer.pad_token = None
    return train_rm(make_tiny_llama(tokenizer), tokenizer, tmp_path_factory.mktemp("trl_rm"), append_eos=False)


class Recorder:
    """A zero-weight TRL reward function that records the prompts and completions TRL scored."""

    __name__ = "recorder"

    def __init__(self):
        self.prompts, self.completions = [], []

    def __call__(self, prompts, completions, **kwargs):
        self.prompts += prompts
        self.completions += completions
        return [0.0] * len(prompts)


def record_rewards(trainer):
    captured = []
    trainer.reward_funcs[0].register_forward_hook(lambda module, args, out: captured.append(out.logits[:, 0].clone()))
    return captured


def trl_args(config_class, tmp_path, **extra):
    return config_class(
        output_dir=str(tmp_path),
        max_steps=2,
        per_device_train_batch_size=4,
        num_generations=2,
        max_completion_length=8,
        learning_rate=1e-4,
        bf16=False,
        use_cpu=True,
        report_to="none",
        save_strategy="no",
        logging_steps=1,
        disable_tqdm=True,
        reward_weights=[1.0, 0.0],
        **extra,
    )


@pytest.mark.parametrize("trainer_name", ["GRPO", "RLOO"])
def test_trl_online_trainer_with_the_exported_reward_model(trainer_name, trl_rm_dir, policy_dir, tmp_path):
    import trl

    meta = json.load(open(os.path.join(trl_rm_dir, "config.json")))["rm_trl"]
    assert meta["trl_path_compatible"] is True
    trainer_class, config_class = getattr(trl, f"{trainer_name}Trainer"), getattr(trl, f"{trainer_name}Config")
    prompts = Dataset.from_list([{"prompt": f"Question {i} about tea:"} for i in range(8)])
    recorder = Recorder()
    trainer = trainer_class(
        model=policy_dir,
        reward_funcs=[trl_rm_dir, recorder],
        args=trl_args(config_class, tmp_path),
        train_dataset=prompts,
    )
    captured = record_rewards(trainer)
    trainer.train()
    trl_rewards = torch.cat(captured).numpy()
    assert len(trl_rewards) == len(recorder.completions) >= 8
    keep = [i for i, c in enumerate(recorder.completions) if c.strip()]
    assert keep, "the tiny policy produced only empty completions"
    ours = RewardScorer.from_pretrained(trl_rm_dir).score_texts(
        [recorder.prompts[i] for i in keep], [recorder.completions[i] for i in keep]
    )
    np.testing.assert_allclose(trl_rewards[keep], ours, atol=1e-5)


def test_grpo_with_reward_function_scores_like_training(rm_dir, policy_dir, tmp_path):
    """For a model whose training appended EOS, `RewardFunction` gives TRL the training-time scores."""
    from trl import GRPOConfig, GRPOTrainer

    from rm_trl.rl import RewardFunction

    assert json.load(open(os.path.join(rm_dir, "config.json")))["rm_trl"]["trl_path_compatible"] is False
    recorder = Recorder()
    reward_function = RewardFunction(rm_dir)
    seen = []

    def tracked(prompts, completions, **kwargs):
        rewards = reward_function(prompts, completions)
        seen.extend(zip(prompts, completions, rewards))
        return rewards

    tracked.__name__ = "rm_trl"
    prompts = Dataset.from_list([{"prompt": f"Question {i} about tea:"} for i in range(8)])
    trainer = GRPOTrainer(
        model=policy_dir, reward_funcs=[tracked, recorder], args=trl_args(GRPOConfig, tmp_path), train_dataset=prompts
    )
    trainer.train()
    scored = [(p, c, r) for p, c, r in seen if r is not None]
    assert scored
    offline = RewardScorer.from_pretrained(rm_dir).score_texts([p for p, _, _ in scored], [c for _, c, _ in scored])
    np.testing.assert_allclose([r for _, _, r in scored], offline, atol=1e-5)
    assert all(r is None for _, c, r in seen if not c.strip())  # empty completions: None (TRL: NaN), not a crash


def test_grpo_recipe_runs(rm_dir, policy_dir, tmp_path):
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    proc = subprocess.run(
        [
            sys.executable,
            os.path.join(REPO_ROOT, "recipes", "grpo_with_rm.py"),
            "--reward_model",
            rm_dir,
            "--policy",
            policy_dir,
            "--max_steps",
            "2",
            "--max_prompts",
            "8",
            "--output_dir",
            str(tmp_path),
        ],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "mean reward per step" in proc.stdout


def test_reward_function_leaves_unscorable_completions_unscored(minilm_path):
    """An RL batch may hold completions that tokenize to nothing (control or zero-width characters only, for a BERT
    tokenizer): they get `None` (TRL ignores it) and the rest are scored, instead of the step failing."""
    from rm_trl.modeling import load_reward_model
    from rm_trl.rl import RewardFunction

    scorer = RewardScorer(*load_reward_model(minilm_path), max_length=64)
    reward = RewardFunction(scorer)
    assert reward(["Q:", "Q:"], ["\u200b\u200b", "\x00\x01"]) == [None, None]
    mixed = reward(["Q:", "Q:", "Q:"], [" great help", "\u200b", " awful"])
    assert mixed[1] is None
    expected = scorer.score_texts(["Q:", "Q:"], [" great help", " awful"])
    np.testing.assert_allclose([mixed[0], mixed[2]], expected, atol=1e-5)
