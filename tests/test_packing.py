"""Packed rows (prompt encoded once, several rows per sequence) give the rewards and gradients of separate forwards."""

import logging

import pytest
import torch
from datasets import Dataset
from transformers import AutoModelForSequenceClassification, AutoTokenizer, DebertaV2Config, LlamaConfig, Qwen2Config

from rm_trl import PairwiseRewardConfig, PairwiseRewardTrainer
from rm_trl.data.collators import RewardDataCollator
from rm_trl.encoder_packing import SegmentPackedCollator
from rm_trl.modeling import setup_pad_token
from rm_trl.packing import PackedRewardDataCollator, packing_support, plan_rows
from rm_trl.reward_reading import TokenRewardCapture

from .conftest import _tiny_decoder_kwargs, learnable_pairs

TOL = 1e-5


def make_model(config_class, tokenizer, attention):
    torch.manual_seed(0)
    config = config_class(**_tiny_decoder_kwargs(tokenizer))
    model = AutoModelForSequenceClassification.from_config(config, attn_implementation=attention)
    setup_pad_token(model, tokenizer)
    return model


def example_rows(tokenizer, n=5, seed=0):
    import random

    rng = random.Random(seed)
    words = "the cat sat on a warm mat while rain fell over quiet hills and rivers".split()
    rows = []
    for i in range(n):
        prompt = tokenizer(" ".join(rng.choices(words, k=rng.randint(3, 12))))["input_ids"]
        responses = [
            tokenizer(" " + " ".join(rng.choices(words, k=rng.randint(1, 7))))["input_ids"] + [tokenizer.eos_token_id]
            for _ in range(rng.randint(2, 4))
        ]
        rows.append({"row": i, "prompt_ids": prompt, "response_ids": responses})
    return rows


def separate_rewards(model, rows):
    """The reference: every (prompt, response) sequence in its own unpadded forward."""
    out = []
    for row in rows:
        for response in row["response_ids"]:
            out.append(model(input_ids=torch.tensor([row["prompt_ids"] + response])).logits[0])
    return torch.stack(out)


@pytest.mark.parametrize("config_class", [LlamaConfig, Qwen2Config], ids=["llama", "qwen2"])
@pytest.mark.parametrize("attention", ["eager", "sdpa"])
@pytest.mark.parametrize("max_row_tokens", [None, 64], ids=["prompt-once", "padding-free"])
def test_packed_rewards_and_gradients_match_separate_forwards(
    smol_tokenizer_dir, config_class, attention, max_row_tokens
):
    tokenizer = AutoTokenizer.from_pretrained(smol_tokenizer_dir)
    model = make_model(config_class, tokenizer, attention)
    rows = example_rows(tokenizer)
    weights = torch.randn(sum(len(r["response_ids"]) for r in rows), 1)

    reference = separate_rewards(model, rows)
    (reference * weights).sum().backward()
    reference_grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()

    collator = PackedRewardDataCollator(
        pad_token_id=tokenizer.pad_token_id, max_row_tokens=max_row_tokens, boolean_mask=attention == "sdpa"
    )
    batch = collator(rows)
    if max_row_tokens:
        assert batch["input_ids"].shape[0] < len(rows)  # several rows share a sequence
    packed = TokenRewardCapture(model)(model, batch)
    torch.testing.assert_close(packed, reference, atol=TOL, rtol=0)
    (packed * weights).sum().backward()
    for name, param in model.named_parameters():
        torch.testing.assert_close(param.grad, reference_grads[name], atol=TOL, rtol=1e-4, msg=name)


def test_prompt_is_encoded_once(smol_tokenizer_dir):
    tokenizer = AutoTokenizer.from_pretrained(smol_tokenizer_dir)
    rows = example_rows(tokenizer, n=4)
    packed = PackedRewardDataCollator(pad_token_id=0)(rows)
    plain = RewardDataCollator(pad_token_id=0)(rows)
    prompt_tokens = sum(len(r["prompt_ids"]) for r in rows)
    response_tokens = sum(len(x) for r in rows for x in r["response_ids"])
    assert packed["token_counts"][0] == prompt_tokens + response_tokens
    repeated = sum(len(r["prompt_ids"]) * len(r["response_ids"]) for r in rows)
    assert plain["token_counts"][0] == repeated + response_tokens
    assert packed["token_counts"][1] < plain["token_counts"][1]


def test_plan_rows_first_fit():
    assert plan_rows([5, 3, 4, 2], None) == [[0], [1], [2], [3]]
    assert plan_rows([5, 3, 4, 2], 8) == [[0, 1], [2, 3]]
    assert plan_rows([9, 3], 8) == [[0], [1]]  # a row longer than the budget still gets a sequence


def test_trainer_packs_decoders_and_falls_back_for_encoders(tiny_llama, minilm_path, tmp_path, caplog):
    model, tokenizer = tiny_llama
    args = PairwiseRewardConfig(
        output_dir=str(tmp_path),
        max_steps=2,
        per_device_train_batch_size=4,
        report_to="none",
        save_strategy="no",
        disable_tqdm=True,
        logging_steps=1,
    )
    data = Dataset.from_list(learnable_pairs(8))
    trainer = PairwiseRewardTrainer(model=model, args=args, processing_class=tokenizer, train_dataset=data)
    assert isinstance(trainer.data_collator, PackedRewardDataCollator)
    trainer.train()
    logged = [e for e in trainer.state.log_history if "padding_fraction" in e]
    assert logged and all(0 <= e["padding_fraction"] < 1 for e in logged)

    encoder = PairwiseRewardTrainer(model=minilm_path, args=args, train_dataset=data)
    assert isinstance(encoder.data_collator, SegmentPackedCollator)  # encoders: padding-free rows instead
    assert not packing_support(AutoModelForSequenceClassification.from_pretrained(minilm_path, num_labels=1))[0]
    deberta = DebertaV2Config(vocab_size=64, hidden_size=32, num_hidden_layers=1, num_attention_heads=4, num_labels=1)
    with caplog.at_level(logging.WARNING):
        unlisted = PairwiseRewardTrainer(
            model=AutoModelForSequenceClassification.from_config(deberta),
            args=args,
            processing_class=AutoTokenizer.from_pretrained(minilm_path),
            train_dataset=data,
        )
    assert type(unlisted.data_collator) is RewardDataCollator
    assert "Packing off" in caplog.text and "deberta-v2" in caplog.text


def test_packed_training_equals_unpacked_training(tiny_llama, tmp_path):
    """Same data, seed and steps: packed and plain batches end with the same weights (to float tolerance).

    Plain SGD: Adam divides by the gradient's running magnitude, which turns float noise in near-zero gradients
    into full-size steps and would compare the optimiser, not the packing."""
    _, tokenizer = tiny_llama
    from .conftest import make_tiny_llama

    weights = []
    models = [make_tiny_llama(tokenizer), make_tiny_llama(tokenizer)]  # before the trainer picks a pad token
    initial = {k: v.detach().clone() for k, v in models[0].state_dict().items()}
    for packing, model in zip((True, False), models):
        args = PairwiseRewardConfig(
            output_dir=str(tmp_path / str(packing)),
            max_steps=3,
            learning_rate=0.1,
            optim="sgd",
            per_device_train_batch_size=4,
            packing=packing,
            report_to="none",
            save_strategy="no",
            disable_tqdm=True,
            seed=3,
        )
        trainer = PairwiseRewardTrainer(
            model=model, args=args, processing_class=tokenizer, train_dataset=Dataset.from_list(learnable_pairs(16))
        )
        trainer.train()
        weights.append({k: v.detach().clone() for k, v in trainer.model.state_dict().items()})
    for key in weights[0]:
        torch.testing.assert_close(weights[0][key], weights[1][key], atol=1e-5, rtol=1e-4, msg=key)
    assert max((weights[0][k] - initial[k]).abs().max() for k in initial) > 1e-3  # training did move the weights


def test_token_budget_batches(tiny_llama, tmp_path):
    from rm_trl.packing import TokenBudgetBatchSampler

    lengths = [5, 40, 7, 33, 12, 48, 9, 30, 8, 41]
    sampler = TokenBudgetBatchSampler(lengths, max_tokens=64, seed=1, window=100)
    batches = list(sampler)
    assert sorted(i for b in batches for i in b) == list(range(10)) and len(sampler) == len(batches)
    assert all(len(b) * max(lengths[i] for i in b) <= 64 or len(b) == 1 for b in batches)
    sampler.set_epoch(1)
    assert sorted(map(sorted, sampler)) == sorted(map(sorted, batches))  # same batches, another order

    model, tokenizer = tiny_llama
    args = PairwiseRewardConfig(
        output_dir=str(tmp_path),
        num_train_epochs=1,
        batch_tokens=256,
        report_to="none",
        save_strategy="no",
        disable_tqdm=True,
        logging_steps=1,
    )
    trainer = PairwiseRewardTrainer(
        model=model, args=args, processing_class=tokenizer, train_dataset=Dataset.from_list(learnable_pairs(40))
    )
    loader = trainer.get_train_dataloader()
    rows = [b["row"].tolist() for b in loader]
    assert sorted(r for b in rows for r in b) == list(range(40))  # every row once per epoch
    assert len({len(b) for b in rows}) > 1  # batch sizes follow the budget
    trainer.train()
    assert trainer.state.global_step == len(rows)
