"""Save -> load -> identical rewards: full fine-tuning and LoRA (adapter reload and merged export)."""

import json
import os

import torch
from datasets import Dataset
from peft import AutoPeftModelForSequenceClassification, LoraConfig
from transformers import AutoModelForSequenceClassification

from rm_trl import PairwiseRewardConfig, PairwiseRewardTrainer, load_reward_model
from rm_trl.export import check_tokenizer_roundtrip

from .conftest import learnable_pairs, make_tiny_llama


def make_trainer(model, tokenizer, output_dir, peft_config=None, steps=3):
    args = PairwiseRewardConfig(
        output_dir=str(output_dir),
        max_steps=steps,
        learning_rate=5e-3,
        per_device_train_batch_size=4,
        max_length=48,
        use_cpu=True,
        report_to="none",
        save_strategy="no",
        disable_tqdm=True,
    )
    data = Dataset.from_list(learnable_pairs(16))
    return PairwiseRewardTrainer(
        model=model,
        args=args,
        train_dataset=data,
        eval_dataset=data,
        processing_class=tokenizer,
        peft_config=peft_config,
    )


def batch_rewards(trainer, model):
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(4)])
    with torch.no_grad():
        return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, 0]


def test_full_model_roundtrip_and_export_files(tiny_llama, tmp_path):
    model, tokenizer = tiny_llama
    trainer = make_trainer(model, tokenizer, tmp_path)
    trainer.train()
    metrics = trainer.evaluate()
    trainer.model.eval()
    before = batch_rewards(trainer, trainer.model)
    out = trainer.save_reward_model(metrics=metrics)
    files = set(os.listdir(out))
    assert {"model.safetensors", "config.json", "tokenizer.json", "README.md", "data_report.json"} <= files
    assert not any(f.endswith((".bin", ".pt")) and "training_args" not in f for f in files)
    reloaded = AutoModelForSequenceClassification.from_pretrained(out).eval()
    torch.testing.assert_close(batch_rewards(trainer, reloaded), before, atol=1e-6, rtol=0)

    meta = json.load(open(os.path.join(out, "config.json")))["rm_trl"]
    assert meta["family"] == "pairwise" and meta["loss"] == {"type": "bradley_terry"}
    assert meta["reward_token"] == "last_non_pad_token" and meta["append_eos"] is True
    assert meta["pad_token"] == tokenizer.pad_token and meta["max_length"] == 48
    report = json.load(open(os.path.join(out, "data_report.json")))
    assert report["train"]["rows_in"] == 16 and report["train"]["rows_out"] == 16
    card = open(os.path.join(out, "README.md")).read()
    assert "rm-trl" in card and "eval_accuracy" in card and "GRPO" in card


def test_lora_adapter_reload_and_merged_export_give_same_rewards(tiny_llama, tmp_path):
    model, tokenizer = tiny_llama
    # As a user would: the base model comes from a folder (or the Hub) that the adapter config points back to.
    model.save_pretrained(tmp_path / "base")
    model = AutoModelForSequenceClassification.from_pretrained(tmp_path / "base")
    lora = LoraConfig(task_type="SEQ_CLS", r=8, lora_alpha=16, target_modules="all-linear", lora_dropout=0.0)
    trainer = make_trainer(model, tokenizer, tmp_path, peft_config=lora, steps=4)
    head_before = trainer.model.base_model.model.score.modules_to_save["default"].weight.detach().clone()
    trainer.train()
    trainer.model.eval()
    head_after = trainer.model.base_model.model.score.modules_to_save["default"].weight
    assert not torch.allclose(head_before, head_after)  # the head was trained, not left at its random init
    before = batch_rewards(trainer, trainer.model)
    out = trainer.save_reward_model()

    adapter_dir = os.path.join(out, "adapter")
    # Plain PEFT: the base config on disk has no pad token id, so pass the one saved with the adapter's tokenizer.
    adapter = AutoPeftModelForSequenceClassification.from_pretrained(
        adapter_dir, pad_token_id=tokenizer.pad_token_id
    ).eval()
    torch.testing.assert_close(batch_rewards(trainer, adapter), before, atol=1e-6, rtol=0)
    torch.testing.assert_close(batch_rewards(trainer, adapter.merge_and_unload()), before, atol=1e-5, rtol=0)
    # rm-trl's loader needs nothing extra.
    loaded, loaded_tokenizer = load_reward_model(adapter_dir)
    assert loaded_tokenizer.pad_token == tokenizer.pad_token
    torch.testing.assert_close(batch_rewards(trainer, loaded.eval()), before, atol=1e-6, rtol=0)
    merged = AutoModelForSequenceClassification.from_pretrained(out).eval()
    torch.testing.assert_close(batch_rewards(trainer, merged), before, atol=1e-5, rtol=0)
    assert "lora" not in " ".join(n for n, _ in merged.named_parameters())


def test_tokenizer_roundtrip_check(tiny_llama, tiny_qwen2, tmp_path, caplog):
    for (model, tokenizer), name in ((tiny_llama, "llama"), (tiny_qwen2, "qwen2")):
        model.save_pretrained(tmp_path / name)
        tokenizer.save_pretrained(tmp_path / name)
    assert check_tokenizer_roundtrip(str(tmp_path / "llama"), tiny_llama[1])
    # A BPE vocabulary saved next to a Qwen2 config reloads as Qwen2Tokenizer and splits "\n\n" differently:
    # the export check says so instead of letting consumers score other token ids.
    with caplog.at_level("WARNING"):
        assert not check_tokenizer_roundtrip(str(tmp_path / "qwen2"), tiny_qwen2[1])
    assert "tokenizes differently" in caplog.text


def test_lora_with_an_added_pad_token_loads_with_rm_trl(bare_tokenizer, tmp_path):
    """When a pad token had to be added, the adapter carries the grown embedding rows; rm-trl's loader resizes
    the unchanged base model before attaching it, and the merged export needs nothing at all."""
    make_tiny_llama(bare_tokenizer).save_pretrained(tmp_path / "base")
    model = AutoModelForSequenceClassification.from_pretrained(tmp_path / "base")
    lora = LoraConfig(task_type="SEQ_CLS", r=4, target_modules="all-linear", lora_dropout=0.0)
    trainer = make_trainer(model, bare_tokenizer, tmp_path, peft_config=lora, steps=2)
    trainer.train()
    trainer.model.eval()
    assert bare_tokenizer.pad_token == "<|pad|>"
    before = batch_rewards(trainer, trainer.model)
    out = trainer.save_reward_model()
    loaded, _ = load_reward_model(os.path.join(out, "adapter"))
    torch.testing.assert_close(batch_rewards(trainer, loaded.eval()), before, atol=1e-6, rtol=0)
    merged = AutoModelForSequenceClassification.from_pretrained(out).eval()
    torch.testing.assert_close(batch_rewards(trainer, merged), before, atol=1e-5, rtol=0)
