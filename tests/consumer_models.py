"""The exports the consumer matrix (tests/test_consumers.py) runs on, the texts it scores, and a tiny policy.

Three backbones, each exported plain, with `normalize_rewards=True` and LoRA-merged (plus one export trained without
EOS), trained for a few steps only: parity with `RewardScorer` does not need a good model, only a trained one.
"""

from __future__ import annotations

import os
import random

import torch
from datasets import Dataset
from peft import LoraConfig
from transformers import AutoModelForSequenceClassification, AutoTokenizer, LlamaConfig, LlamaForCausalLM

from rm_trl import PairwiseRewardConfig, PairwiseRewardTrainer

from .conftest import learnable_pairs, make_tiny_llama

MODELS = {
    "minilm": "encoder: MiniLM (BERT tokenizer, [CLS] ... [SEP], pooled `classifier` head)",
    "llama_pad": "tiny Llama decoder, SmolLM2 tokenizer with its own `<|pad|>` token",
    "smol_pad_eos": "tiny Llama decoder, SmolLM2 tokenizer as shipped (pad `<|im_end|>` == EOS)",
}
VARIANTS = {
    "plain": "full fine-tune",
    "normalized": "`normalize_rewards=True`",
    "lora_merged": "LoRA r=4, merged into the export",
    "no_eos": "`append_eos=False`",
    "ensemble": "`ensemble_heads=4` (the export's `logits[:, 0]` is the heads' mean)",
}
EXPORTS: list[tuple[str, str]] = [(m, v) for m in MODELS for v in ("plain", "normalized", "lora_merged")]
EXPORTS += [("llama_pad", "no_eos"), ("minilm", "ensemble"), ("smol_pad_eos", "ensemble")]
EXPORT_IDS = [f"{m}-{v}" for m, v in EXPORTS]

WORDS = ["great", "helpful", "clear", "kind", "awful", "rude", "wrong", "maybe", "tea", "rain", "jazz", "bread"]


def consumer_texts(n: int = 32, seed: int = 3) -> tuple[list[str], list[str]]:
    """Short prompt / response pairs of varied lengths (so batches pad), a few with non-ASCII text."""
    rng = random.Random(seed)
    prompts, responses = [], []
    for i in range(n):
        prompts.append(f"Question {i} about {rng.choice(WORDS)}" + "?" * (i % 3) + ":")
        responses.append(" " + " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 9))))
    responses[3] = " Ünïcödé, emoji 😀 and digits 12345."
    responses[9] = " two\nlines"
    return prompts, responses


def _backbone(name: str, minilm_path: str, smol_tokenizer_dir: str, heads: int = 1):
    if name == "minilm":
        return AutoModelForSequenceClassification.from_pretrained(
            minilm_path, num_labels=heads
        ), AutoTokenizer.from_pretrained(minilm_path)
    tokenizer = AutoTokenizer.from_pretrained(smol_tokenizer_dir)
    if name == "llama_pad":
        tokenizer.add_special_tokens({"pad_token": "<|pad|>"})
    else:  # rm-trl must pick another pad token; a Qwen2 config here would reload the tokenizer as another class
        assert tokenizer.pad_token_id == tokenizer.eos_token_id
    return make_tiny_llama(tokenizer, num_labels=heads), tokenizer


def train_export(name: str, variant: str, output_dir: str, minilm_path: str, smol_tokenizer_dir: str) -> str:
    """Train `name` for a few steps as `variant` and save its export; returns the export folder."""
    heads = 4 if variant == "ensemble" else 1
    model, tokenizer = _backbone(name, minilm_path, smol_tokenizer_dir, heads)
    settings = dict(
        output_dir=str(output_dir),
        max_steps=2,
        per_device_train_batch_size=4,
        learning_rate=5e-5 if name == "minilm" else 3e-3,
        max_length=64,
        use_cpu=True,
        report_to="none",
        save_strategy="no",
        disable_tqdm=True,
        normalize_rewards=variant == "normalized",
        ensemble_heads=heads,
    )
    if variant == "no_eos":
        settings["append_eos"] = False
    lora = None
    if variant == "lora_merged":
        lora = LoraConfig(task_type="SEQ_CLS", r=4, lora_alpha=8, target_modules="all-linear", lora_dropout=0.0)
        settings["learning_rate"] *= 10
    trainer = PairwiseRewardTrainer(
        model=model,
        args=PairwiseRewardConfig(**settings),
        processing_class=tokenizer,
        train_dataset=Dataset.from_list(learnable_pairs(8)),
        peft_config=lora,
    )
    trainer.train()
    return trainer.save_reward_model()


def make_policy(output_dir: str, smol_tokenizer_dir: str) -> str:
    """A tiny causal LM folder for TRL's GRPO / RLOO trainers (they need a policy; it generates nothing here)."""
    tokenizer = AutoTokenizer.from_pretrained(smol_tokenizer_dir)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.bos_token_id,
    )
    os.makedirs(output_dir, exist_ok=True)
    LlamaForCausalLM(config).save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    return output_dir
