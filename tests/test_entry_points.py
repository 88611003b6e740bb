"""The entry points as a user runs them (`rm-trl train`, `recipes/*.py`), in subprocesses from empty folders:
defaults, TRL-style names, errors without tracebacks, resume, and a Hub push captured offline."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
import yaml
from datasets import Dataset
from safetensors.torch import load_file
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from rm_trl import PairwiseRewardConfig
from rm_trl.checkpoints import checkpoint_problem, resolve_resume
from rm_trl.errors import ConfigError, ModelLoadError, TrainingError
from rm_trl.modeling import fit_max_length_to_model, load_reward_model
from rm_trl.recipe import parse
from rm_trl.scoring import RewardScorer

from .conftest import REPO_ROOT, learnable_pairs, make_tiny_llama

DEMO_CONFIG = os.path.join(REPO_ROOT, "recipes", "configs", "pairwise_demo.yaml")
CAPTURE_SITE = os.path.join(REPO_ROOT, "tests", "hub_capture")


def launch(args: list[str], cwd, capture=None, check=True, timeout=600) -> subprocess.CompletedProcess:
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", PYTHONPATH=REPO_ROOT)
    env.pop("RM_TRL_DEBUG", None)
    if capture is not None:
        env["PYTHONPATH"] = os.pathsep.join([CAPTURE_SITE, REPO_ROOT])
        env["RM_TRL_TEST_HUB_CAPTURE"] = str(capture)
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if check:
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def rm_trl_train(*flags, cwd, **kwargs):
    return launch([sys.executable, "-m", "rm_trl.cli", "train", "pairwise", *map(str, flags)], cwd, **kwargs)


def assert_user_error(proc, *fragments):
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    for fragment in fragments:
        assert fragment in proc.stderr, proc.stderr[-2000:]


QUICK = ["--max_length", 48, "--per_device_train_batch_size", 8, "--learning_rate", 3e-3, "--report_to", "none"]
QUICK += ["--disable_tqdm", "true", "--logging_steps", 4]


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory, smol_tokenizer_dir):
    tokenizer = AutoTokenizer.from_pretrained(smol_tokenizer_dir)
    tokenizer.pad_token = None
    path = tmp_path_factory.mktemp("tiny-llama")
    make_tiny_llama(tokenizer).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="module")
def pairs_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "my_pairs.jsonl"
    Dataset.from_list(learnable_pairs(64, seed=11)).to_json(path)
    return str(path)


# ----- defaults and names -------------------------------------------------------------------------------------------
def test_no_arguments_run_the_demo_and_any_flag_starts_from_plain_defaults():
    data, config, model = parse(PairwiseRewardConfig, DEMO_CONFIG, [])
    assert data.train_data.startswith("data/demo") and config.max_length == 128
    data, config, model = parse(PairwiseRewardConfig, DEMO_CONFIG, ["--max_train_samples", "4"])
    assert data.train_data.startswith("data/demo") and data.max_train_samples == 4  # a tweak of the demo
    data, config, model = parse(PairwiseRewardConfig, DEMO_CONFIG, ["--model_name_or_path", "m", "--train_data", "x"])
    plain = PairwiseRewardConfig(output_dir="unused")
    assert data.eval_data is None and data.train_data == "x"
    assert config.max_length == plain.max_length and config.learning_rate == plain.learning_rate
    assert config.output_dir == os.path.join("outputs", "pairwise")


def test_trl_argument_names_are_accepted_or_explained(tmp_path):
    argv = ["--model_name_or_path", "m", "--dataset_name", "org/prefs", "--dataset_train_split", "tr"]
    data, _, _ = parse(PairwiseRewardConfig, DEMO_CONFIG, [*argv, "--dataset_test_split=validation"])
    assert (data.train_data, data.train_split, data.eval_split) == ("org/prefs", "tr", "validation")
    (tmp_path / "trl.yaml").write_text(yaml.safe_dump({"model_name_or_path": "m", "dataset_name": "org/prefs"}))
    data, _, _ = parse(PairwiseRewardConfig, DEMO_CONFIG, ["--config", str(tmp_path / "trl.yaml")])
    assert data.train_data == "org/prefs"
    with pytest.raises(ConfigError, match="dataset_streaming.*no rm-trl equivalent"):
        parse(PairwiseRewardConfig, None, [*argv, "--dataset_streaming", "true"])
    with pytest.raises(ConfigError, match="unknown arguments.*--no_such_flag"):
        parse(PairwiseRewardConfig, None, [*argv, "--no_such_flag", "1"])
    (tmp_path / "bad.yaml").write_text("model_name_or_path: m\ntrain_data: x\nlearning_rat: 1\n")
    with pytest.raises(ConfigError, match="unknown keys.*learning_rat"):
        parse(PairwiseRewardConfig, None, ["--config", str(tmp_path / "bad.yaml")])


def test_user_errors_print_one_message_without_traceback(tiny_dir, pairs_file, tmp_path):
    assert_user_error(rm_trl_train("--config", "nope.yaml", cwd=tmp_path, check=False), "config file not found")
    missing = str(tmp_path / "no-model")
    proc = rm_trl_train("--model_name_or_path", missing, "--train_data", pairs_file, cwd=tmp_path, check=False)
    assert_user_error(proc, "model not found", missing)
    proc = rm_trl_train("--model_name_or_path", tiny_dir, "--train_data", "missing.jsonl", cwd=tmp_path, check=False)
    assert_user_error(proc, "missing.jsonl")
    proc = rm_trl_train(
        "--model_name_or_path", tiny_dir, "--train_data", pairs_file, "--max_steps", -3, "--num_train_epochs", 0,
        cwd=tmp_path, check=False,
    )  # fmt: skip
    assert_user_error(proc, "nothing would be trained")
    proc = rm_trl_train(
        "--model_name_or_path", missing, "--train_data", pairs_file, "--debug", cwd=tmp_path, check=False
    )
    assert proc.returncode == 1 and "Traceback" in proc.stderr  # asked for


def test_max_length_beyond_the_position_limit_is_refused_at_start(minilm_path, pairs_file, tmp_path):
    model, _ = load_reward_model(minilm_path)
    with pytest.raises(ConfigError, match="max_length=2048 is more than the 512 positions"):
        fit_max_length_to_model(model, PairwiseRewardConfig(output_dir=str(tmp_path), max_length=2048))
    default = PairwiseRewardConfig(output_dir=str(tmp_path))
    fit_max_length_to_model(model, default)
    assert default.max_length == 512  # the default is lowered, not refused
    proc = rm_trl_train(
        "--model_name_or_path", minilm_path, "--train_data", pairs_file, "--max_length", 2048, cwd=tmp_path, check=False
    )
    assert_user_error(proc, "max_length=2048")


def test_pickled_adapters_are_refused(tmp_path):
    (tmp_path / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "base_model_name_or_path": "x"}))
    (tmp_path / "adapter_model.bin").write_bytes(b"not opened")
    with pytest.raises(ModelLoadError, match="safetensors only"):
        load_reward_model(str(tmp_path))


# ----- resume -------------------------------------------------------------------------------------------------------
def recipe_config(tmp_path, tiny_dir, pairs_file, output_dir) -> str:
    config = {
        "model_name_or_path": tiny_dir,
        "train_data": pairs_file,
        "output_dir": str(output_dir),
        "max_length": 48,
        "per_device_train_batch_size": 4,
        "learning_rate": 3.0e-3,
        "max_steps": 12,
        "save_strategy": "steps",
        "save_steps": 2,
        "logging_steps": 2,
        "report_to": "none",
        "disable_tqdm": True,
        "seed": 3,
    }
    path = tmp_path / f"{os.path.basename(output_dir)}.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def test_recipe_killed_then_resumed_matches_an_uninterrupted_run(tiny_dir, pairs_file, tmp_path):
    recipe = os.path.join(REPO_ROOT, "recipes", "pairwise.py")
    full = recipe_config(tmp_path, tiny_dir, pairs_file, tmp_path / "full")
    launch([sys.executable, recipe, "--config", full], tmp_path)

    interrupted_dir = tmp_path / "interrupted"
    cut = recipe_config(tmp_path, tiny_dir, pairs_file, interrupted_dir)
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", PYTHONPATH=REPO_ROOT)
    job = subprocess.Popen([sys.executable, recipe, "--config", cut], cwd=tmp_path, env=env, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while not (interrupted_dir / "checkpoint-4").is_dir():
        assert job.poll() is None and time.monotonic() < deadline, "the job ended before its 2nd checkpoint"
        time.sleep(0.05)
    job.send_signal(signal.SIGKILL)
    job.wait(timeout=60)
    # A torn later checkpoint (what a kill during a plain in-place save leaves) must be skipped, and named.
    torn = interrupted_dir / "checkpoint-10"
    torn.mkdir()
    (torn / "optimizer.pt").write_bytes(b"PK\x03\x04 cut short")
    (torn / "model.safetensors").write_bytes(b"\x10")

    proc = launch([sys.executable, recipe, "--config", cut, "--resume_from_checkpoint", "true"], tmp_path)
    assert "Skipping checkpoint" in proc.stderr and "checkpoint-10" in proc.stderr
    state = json.loads((interrupted_dir / "checkpoint-12" / "trainer_state.json").read_text())
    resumed_from = min(entry["step"] for entry in state["log_history"] if "loss" in entry)
    assert state["global_step"] == 12 and resumed_from == 2  # the log history carries on from the checkpoint
    a = load_file(str(tmp_path / "full" / "model.safetensors"))
    b = load_file(str(interrupted_dir / "model.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=1e-5, rtol=1e-4)

    proc = launch(
        [sys.executable, recipe, "--config", cut, "--resume_from_checkpoint", "nowhere"], tmp_path, check=False
    )
    assert_user_error(proc, "resume_from_checkpoint: nowhere is not a folder")


def test_resume_picks_the_last_complete_checkpoint(tmp_path):
    for step in (2, 4):
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        (folder / "trainer_state.json").write_text(json.dumps({"global_step": step}))
        torch.save({"x": torch.zeros(3)}, folder / "optimizer.pt")
        (folder / "model.safetensors").write_bytes((2).to_bytes(8, "little") + b"{}")
    assert resolve_resume("true", str(tmp_path)) == str(tmp_path / "checkpoint-4")
    cut = tmp_path / "checkpoint-4" / "optimizer.pt"
    cut.write_bytes(cut.read_bytes()[:20])
    assert checkpoint_problem(str(tmp_path / "checkpoint-4")) == "optimizer.pt is cut short"
    assert resolve_resume(True, str(tmp_path)) == str(tmp_path / "checkpoint-2")
    (tmp_path / "checkpoint-2" / "trainer_state.json").write_text('{"global_st')
    with pytest.raises(TrainingError, match="no complete checkpoint"):
        resolve_resume(True, str(tmp_path))
    assert resolve_resume("false", str(tmp_path)) is None and resolve_resume(None, str(tmp_path)) is None


# ----- Hub push, captured offline -----------------------------------------------------------------------------------
def plain_rewards(folder: str, texts: list[str]) -> np.ndarray:
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    with torch.no_grad():
        batch = tokenizer(texts, padding=True, return_tensors="pt")
        return model(**batch).logits[:, 0].numpy()


def captured_commits(capture) -> list[dict]:
    calls = [json.loads(line) for line in open(os.path.join(capture, "calls.jsonl"))]
    return [c for c in calls if c["call"] == "create_commit"]


def test_train_cli_from_an_empty_folder_pushes_the_normalised_export_in_one_commit(minilm_path, pairs_file, tmp_path):
    capture, workdir = tmp_path / "hub", tmp_path / "empty"
    workdir.mkdir()
    proc = rm_trl_train(
        "--model_name_or_path", minilm_path, "--train_data", pairs_file, "--eval_fraction", 0.25,
        "--normalize_rewards", "true", "--push_to_hub", "true", "--hub_model_id", "me/my-rm", *QUICK,
        cwd=workdir, capture=capture,
    )  # fmt: skip
    local = workdir / "outputs" / "pairwise"  # the family's default output folder, under the user's folder
    assert [c["repo_id"] for c in captured_commits(capture)] == ["me/my-rm"]  # one commit, the finished export
    pushed = capture / "commit-0"
    files = json.loads((pushed / "_commit.json").read_text())["files"]
    assert {"config.json", "model.safetensors", "README.md", "data_report.json", "eval_results.json"} <= set(files)
    assert not [f for f in files if f.startswith(("checkpoint-", "adapter_")) or f.endswith("training_args.bin")]
    assert not (local / "training_args.bin").exists()
    for name in files:
        assert (pushed / name).read_bytes() == (local / name).read_bytes(), name

    card = (pushed / "README.md").read_text()
    assert "eval_accuracy" in card and "baked into the head" in card
    report = json.loads((pushed / "data_report.json").read_text())
    assert report["train"]["rows_in"] + report["eval"]["rows_in"] == 64  # the user's file, split; no demo data
    assert "data/demo" not in proc.stdout + proc.stderr + json.dumps(report)

    texts = [r["prompt"] + r["chosen"] for r in learnable_pairs(16, seed=5)]
    scorer = RewardScorer.from_pretrained(str(local))
    expected = scorer.score_texts([""] * len(texts), texts)
    np.testing.assert_allclose(plain_rewards(str(pushed), texts), expected, atol=1e-5)
    eval_rewards = np.concatenate(
        scorer.score_prepared(scorer.prepare(Dataset.from_list(learnable_pairs(64, seed=11)))).scalar_rewards()
    )
    assert eval_rewards.std() > 0.5  # normalised (raw rewards of a briefly trained head are ~0.01 apart)


def test_lora_push_uploads_the_merged_model_not_top_level_adapter_files(tiny_dir, pairs_file, tmp_path):
    capture = tmp_path / "hub"
    rm_trl_train(
        "--model_name_or_path", tiny_dir, "--train_data", pairs_file, "--use_peft", "true", "--lora_r", 4,
        "--output_dir", tmp_path / "out", "--push_to_hub", "true", "--hub_model_id", "me/lora-rm", *QUICK,
        cwd=tmp_path, capture=capture,
    )  # fmt: skip
    assert len(captured_commits(capture)) == 1
    pushed = capture / "commit-0"
    files = json.loads((pushed / "_commit.json").read_text())["files"]
    assert "model.safetensors" in files and "adapter/adapter_model.safetensors" in files
    assert not [f for f in files if f.startswith("adapter_") or f.endswith("training_args.bin")]
    texts = [r["prompt"] + r["rejected"] for r in learnable_pairs(8, seed=6)]
    scorer = RewardScorer.from_pretrained(str(tmp_path / "out"))
    expected = [scorer.score_texts([""], [t])[0] for t in texts]  # unpadded, one at a time
    tokenizer = AutoTokenizer.from_pretrained(pushed)
    model = AutoModelForSequenceClassification.from_pretrained(pushed).eval()
    with torch.no_grad():
        got = [model(**tokenizer(t + tokenizer.eos_token, return_tensors="pt")).logits[0, 0].item() for t in texts]
    np.testing.assert_allclose(got, expected, atol=1e-5)


KILL_DURING_SAVE = """
import os, signal, sys
from transformers import Trainer

original = Trainer._save_optimizer_and_scheduler

def save_then_die(self, output_dir):
    if self.state.global_step == 4:  # the 2nd save: write part of the optimizer state, then die mid-save
        with open(os.path.join(output_dir, "optimizer.pt"), "wb") as f:
            f.write(b"PK\\x03\\x04 partial")
        os.kill(os.getpid(), signal.SIGKILL)
    return original(self, output_dir)

Trainer._save_optimizer_and_scheduler = save_then_die
from rm_trl.recipe import main
sys.exit(main("pairwise", sys.argv[1:]))
"""


def test_a_kill_during_a_save_leaves_no_checkpoint_that_looks_complete(tiny_dir, pairs_file, tmp_path):
    out = tmp_path / "killed"
    config = recipe_config(tmp_path, tiny_dir, pairs_file, out)
    proc = launch([sys.executable, "-c", KILL_DURING_SAVE, "--config", config], tmp_path, check=False)
    assert proc.returncode == -signal.SIGKILL
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-2"]  # the torn one is only staged
    proc = launch([sys.executable, "-m", "rm_trl.cli", "train", "pairwise", "--config", config,
                   "--resume_from_checkpoint", "true"], tmp_path)  # fmt: skip
    assert "Resuming from" in proc.stderr and "checkpoint-2" in proc.stderr
    assert json.loads((out / "checkpoint-12" / "trainer_state.json").read_text())["global_step"] == 12
    assert not list((out / ".checkpoint-staging").iterdir())  # the staged leftover was replaced and published


# ----- what an adversarial tester found ------------------------------------------------------------------------------
def test_spellings_paths_and_values_are_checked_at_parse_time(tmp_path, monkeypatch):
    (tmp_path / "ok.yaml").write_text("model_name_or_path: m\ntrain_data: x\n")
    data, _, _ = parse(PairwiseRewardConfig, None, [f"--config={tmp_path / 'ok.yaml'}", "--dataset-name", "org/d"])
    assert data.train_data == "org/d"  # `--flag=value` and dashed names, as argparse accepts them
    (tmp_path / "x.yaml").write_text("model_name_or_path: m\ntrain_data: x\nx: 1\n")
    with pytest.raises(ConfigError, match=r"unknown keys in the config file: \['x'\]"):
        parse(PairwiseRewardConfig, None, ["--config", str(tmp_path / "x.yaml")])
    with pytest.raises(ConfigError, match="is a folder"):
        parse(PairwiseRewardConfig, None, ["--config", str(tmp_path)])
    base = ["--model_name_or_path", "m", "--train_data", "x"]
    for flags, message in (
        (["--eval_fraction", "1.5"], "eval_fraction=1.5"),
        (["--max_train_samples", "0"], "max_train_samples=0"),
        (["--per_device_train_batch_size", "0"], "per_device_train_batch_size=0"),
        (["--gradient_accumulation_steps", "0"], "gradient_accumulation_steps=0"),
        (["--learning_rate", "nan"], "learning_rate=nan"),
    ):
        with pytest.raises(ConfigError, match=message):
            parse(PairwiseRewardConfig, None, base + flags)
    monkeypatch.chdir(tmp_path)  # the demo's data is found from anywhere
    data, _, _ = parse(PairwiseRewardConfig, DEMO_CONFIG, [])
    assert os.path.isfile(data.train_data) and os.path.isfile(data.eval_data)


def test_checkpoints_from_another_model_or_without_a_state_are_refused(tmp_path, smol_tokenizer_dir):
    from rm_trl.checkpoints import weights_mismatch

    tokenizer = AutoTokenizer.from_pretrained(smol_tokenizer_dir)
    model = make_tiny_llama(tokenizer)
    model.save_pretrained(tmp_path / "same")
    assert weights_mismatch(str(tmp_path / "same"), model) is None
    other = make_tiny_llama(tokenizer)
    other.config.num_hidden_layers = 1
    AutoModelForSequenceClassification.from_config(other.config).save_pretrained(tmp_path / "other")
    assert "saved from another model" in weights_mismatch(str(tmp_path / "other"), model)
    (tmp_path / "same" / "trainer_state.json").write_text("[]")
    assert checkpoint_problem(str(tmp_path / "same")) == "trainer_state.json holds no trainer state"
    (tmp_path / "notok").mkdir()
    for name in ("config.json", "model.safetensors"):
        (tmp_path / "notok" / name).write_bytes((tmp_path / "same" / name).read_bytes())
    with pytest.raises(ModelLoadError, match="has no tokenizer files"):
        load_reward_model(str(tmp_path / "notok"))


def test_eval_split_of_the_training_source_is_used_and_setup_errors_are_messages(tiny_dir, tmp_path):
    from datasets import DatasetDict

    splits = DatasetDict(
        {"train": Dataset.from_list(learnable_pairs(32, seed=1)), "test": Dataset.from_list(learnable_pairs(8, seed=2))}
    )
    splits.save_to_disk(tmp_path / "dd")
    common = ["--model_name_or_path", tiny_dir, "--dataset_name", tmp_path / "dd", *QUICK, "--max_steps", 2]
    rm_trl_train(*common, "--dataset_test_split", "test", "--output_dir", tmp_path / "o", cwd=tmp_path)
    assert json.loads((tmp_path / "o" / "eval_results.json").read_text())["eval_loss"] > 0  # it evaluated
    proc = rm_trl_train(*common, "--eval_split", "validation", "--output_dir", tmp_path / "o2", cwd=tmp_path, check=0)
    assert_user_error(proc, "split 'validation' not found", "available: ['test', 'train']")
    proc = rm_trl_train(*common, "--use_peft", "true", "--lora_target_modules", "nosuch", cwd=tmp_path, check=0)
    assert_user_error(proc, "setting up training", "NoMatchingPeftModuleError")
    proc = rm_trl_train(*common, "--push_to_hub", "true", "--output_dir", tmp_path / "o3", cwd=tmp_path, check=0)
    assert_user_error(proc, "push to the Hub (o3) failed", "The export is complete in")
    assert (tmp_path / "o3" / "model.safetensors").is_file()
