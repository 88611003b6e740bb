"""Scale-out: a real 2-process CPU data-parallel run, QLoRA on CPU, gradient checkpointing, float32 head."""

import json
import os
import subprocess
import sys

import pytest
import torch
import yaml
from datasets import Dataset
from peft import LoraConfig
from transformers import AutoModelForSequenceClassification, AutoTokenizer, BitsAndBytesConfig

from rm_trl import (
    ListwiseRewardConfig,
    ListwiseRewardTrainer,
    PairwiseRewardConfig,
    PairwiseRewardTrainer,
    PointwiseRewardConfig,
    PointwiseRewardTrainer,
    load_reward_model,
)
from rm_trl.data.collators import RewardDataCollator
from rm_trl.modeling import keep_head_in_float32

from .conftest import REPO_ROOT, learnable_pairs, make_tiny_llama
from .test_families import ranked_rows, rated_rows


def plain_rewards(model, trainer, rows=4):
    """Rewards of the first training rows from a plain padded forward (any model, packed training or not)."""
    batch = RewardDataCollator(pad_token_id=trainer.processing_class.pad_token_id)(
        [trainer.train_dataset[i] for i in range(rows)]
    )
    with torch.no_grad():
        return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.float()


def launch(cmd, cwd, env_extra):
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", **env_extra)
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def test_two_cpu_processes_match_one_process(llama_tokenizer, tmp_path):
    model_dir = tmp_path / "tiny"
    make_tiny_llama(llama_tokenizer).save_pretrained(model_dir)
    llama_tokenizer.save_pretrained(model_dir)
    Dataset.from_list(learnable_pairs(64)).to_json(tmp_path / "train.jsonl")
    base = {
        "model_name_or_path": str(model_dir),
        "train_data": str(tmp_path / "train.jsonl"),
        "max_length": 48,
        "max_steps": 4,
        "learning_rate": 0.05,
        "optim": "sgd",
        "train_sampling_strategy": "random",
        "seed": 5,
        "save_strategy": "no",
        "report_to": "none",
        "disable_tqdm": True,
        "dataloader_drop_last": True,
    }
    runs = {"two": (2, 4), "one": (1, 8)}  # same global batch of 8 pairs
    for name, (processes, per_device) in runs.items():
        config = {**base, "output_dir": str(tmp_path / name), "per_device_train_batch_size": per_device}
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(config))
        launcher = (
            ["--config_file", os.path.join(REPO_ROOT, "accelerate_configs", "multi_cpu.yaml")]
            if processes == 2
            else ["--num_processes", "1", "--num_machines", "1"]
        )
        cmd = [
            sys.executable,
            "-m",
            "accelerate.commands.launch",
            *launcher,
            "--mixed_precision",
            "no",
            "--dynamo_backend",
            "no",
            os.path.join(REPO_ROOT, "recipes", "pairwise.py"),
            "--config",
            str(tmp_path / f"{name}.yaml"),
        ]
        launch(cmd, tmp_path, {"RM_TRL_RANK_DIGEST_DIR": str(tmp_path / f"digest-{name}")})
    ranks = [json.load(open(tmp_path / "digest-two" / f"rank{r}.json")) for r in (0, 1)]
    assert ranks[0]["world_size"] == ranks[1]["world_size"] == 2  # two real processes, one DDP world
    assert ranks[0]["digest"] == ranks[1]["digest"]  # identical replicas
    two = torch.load(tmp_path / "digest-two" / "weights.pt")
    one = torch.load(tmp_path / "digest-one" / "weights.pt")
    initial = AutoModelForSequenceClassification.from_pretrained(model_dir).state_dict()
    moved = max((one[k] - initial[k]).abs().max().item() for k in one if k in initial and "embed" not in k)
    assert moved > 1e-3
    for key in one:
        torch.testing.assert_close(two[key], one[key], atol=1e-5, rtol=1e-4, msg=key)


@pytest.mark.parametrize("backbone", ["tiny-llama", "minilm"])
def test_qlora_step_and_adapter_reload_on_cpu(backbone, llama_tokenizer, minilm_path, tmp_path):
    if backbone == "tiny-llama":
        path = tmp_path / "base"
        make_tiny_llama(llama_tokenizer).save_pretrained(path)
        llama_tokenizer.save_pretrained(path)
        path, targets = str(path), "all-linear"
    else:
        path, targets = minilm_path, ["query", "value"]
    quant = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.float32)
    model, tokenizer = load_reward_model(path, quantization_config=quant)
    assert getattr(model, "is_loaded_in_4bit", False)
    lora = LoraConfig(task_type="SEQ_CLS", r=4, lora_alpha=8, target_modules=targets, lora_dropout=0.0)
    args = PairwiseRewardConfig(
        output_dir=str(tmp_path / "out"),
        max_steps=2,
        learning_rate=1e-3,
        per_device_train_batch_size=4,
        max_length=32,
        report_to="none",
        save_strategy="no",
        disable_tqdm=True,
        export_merged=False,
        logging_steps=1,
    )
    trainer = PairwiseRewardTrainer(
        model=model,
        args=args,
        processing_class=tokenizer,
        peft_config=lora,
        train_dataset=Dataset.from_list(learnable_pairs(8)),
    )
    trainer.train()
    losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
    assert len(losses) == 2 and all(torch.isfinite(torch.tensor(losses)))  # real steps, finite losses
    trainer.model.eval()
    before = plain_rewards(trainer.model, trainer)
    out = trainer.save_reward_model()
    reloaded, _ = load_reward_model(os.path.join(out, "adapter"), quantization_config=quant)
    keep_head_in_float32(reloaded)
    after = plain_rewards(reloaded.eval(), trainer)
    torch.testing.assert_close(after, before, atol=1e-5, rtol=0)


def test_missing_bitsandbytes_is_a_clear_error(monkeypatch, minilm_path):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "bitsandbytes" else real(name, *a)
    )
    with pytest.raises(ImportError, match=r"needs bitsandbytes.*rm-trl\[quant\]"):
        load_reward_model(minilm_path, quantization_config=BitsAndBytesConfig(load_in_4bit=True))


@pytest.mark.parametrize("packing", [True, False])
def test_gradient_checkpointing_with_lora_gives_the_same_gradients(llama_tokenizer, tmp_path, packing):
    grads = []
    for checkpointing in (False, True):
        model = make_tiny_llama(llama_tokenizer)
        lora = LoraConfig(
            task_type="SEQ_CLS", r=4, target_modules="all-linear", lora_dropout=0.0, init_lora_weights=False
        )
        args = PairwiseRewardConfig(
            output_dir=str(tmp_path / str(checkpointing)),
            max_steps=1,
            packing=packing,
            gradient_checkpointing=checkpointing,
            per_device_train_batch_size=4,
            report_to="none",
            save_strategy="no",
            disable_tqdm=True,
        )
        trainer = PairwiseRewardTrainer(
            model=model,
            args=args,
            processing_class=llama_tokenizer,
            peft_config=lora,
            train_dataset=Dataset.from_list(learnable_pairs(8)),
        )
        if checkpointing:
            trainer.model.gradient_checkpointing_enable(
                gradient_checkpointing_kwargs=args.gradient_checkpointing_kwargs
            )
            assert args.gradient_checkpointing_kwargs == {"use_reentrant": False}
        trainer.model.train()
        batch = trainer.data_collator([trainer.train_dataset[i] for i in range(4)])
        trainer.compute_loss(trainer.model, batch).backward()
        grads.append({n: p.grad.clone() for n, p in trainer.model.named_parameters() if p.requires_grad})
    assert grads[0].keys() == grads[1].keys() and any("score" in n for n in grads[0])
    for name in grads[0]:
        torch.testing.assert_close(grads[1][name], grads[0][name], atol=1e-6, rtol=1e-5, msg=name)


def test_reward_head_runs_in_float32_under_bf16_autocast(tiny_llama):
    model, _ = tiny_llama
    keep_head_in_float32(model)
    model.config.pad_token_id = 0
    ids = torch.randint(5, 500, (2, 7))
    captured = {}
    model.score.register_forward_hook(lambda m, a, out: captured.update(inp=a[0], out=out))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(input_ids=ids).logits
        assert torch.is_autocast_enabled("cpu")  # the context is restored after the head
    assert captured["inp"].dtype == torch.float32 and captured["out"].dtype == torch.float32
    assert logits.dtype == torch.float32
    torch.testing.assert_close(captured["out"], captured["inp"] @ model.score.weight.T)


def test_reward_head_follows_weights_an_engine_casts_after_set_up(tiny_llama):
    """DeepSpeed's bf16 engine and FSDP2 mixed precision cast the whole model, head included, after rm-trl's set-up
    (seen on an H100: `mat1 and mat2 must have the same dtype`); the head's input then follows its weights."""
    model, _ = tiny_llama
    keep_head_in_float32(model)
    model.config.pad_token_id = 0
    model.to(torch.bfloat16)
    logits = model(input_ids=torch.randint(5, 500, (2, 7))).logits
    assert logits.dtype == torch.bfloat16 and torch.isfinite(logits.float()).all()


def test_fp16_on_cpu_is_refused():
    with pytest.raises(ValueError, match="fp16 mixed precision needs a GPU"):
        PairwiseRewardConfig(output_dir="x", fp16=True)


@pytest.mark.parametrize("family", ["pointwise", "listwise"])
def test_lora_for_other_families_exports_the_trained_head(family, llama_tokenizer, tmp_path):
    config_class, trainer_class, rows = {
        "pointwise": (PointwiseRewardConfig, PointwiseRewardTrainer, rated_rows(16)),
        "listwise": (ListwiseRewardConfig, ListwiseRewardTrainer, ranked_rows(8)),
    }[family]
    args = config_class(
        output_dir=str(tmp_path),
        max_steps=2,
        learning_rate=1e-2,
        per_device_train_batch_size=4,
        report_to="none",
        save_strategy="no",
        disable_tqdm=True,
    )
    lora = LoraConfig(task_type="SEQ_CLS", r=4, target_modules="all-linear", lora_dropout=0.0)
    trainer = trainer_class(
        model=make_tiny_llama(llama_tokenizer),
        args=args,
        processing_class=llama_tokenizer,
        peft_config=lora,
        train_dataset=Dataset.from_list(rows),
    )
    trainer.train()
    trainer.model.eval()
    before = plain_rewards(trainer.model, trainer, rows=2)
    out = trainer.save_reward_model()
    merged = AutoModelForSequenceClassification.from_pretrained(out).eval()
    after = plain_rewards(merged, trainer, rows=2)
    torch.testing.assert_close(after, before, atol=1e-5, rtol=0)
    assert AutoTokenizer.from_pretrained(out).pad_token == llama_tokenizer.pad_token
