"""Reward positions are data: every tokenized row names where its rewards are read, and padded and packed batches
read them through one code path (`rm_trl.reward_reading`), for one position per response or several."""

import random

import pytest
import torch
from datasets import Dataset
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from rm_trl import PairwiseRewardConfig, PairwiseRewardTrainer
from rm_trl.data import prepare_dataset
from rm_trl.data.collators import RewardDataCollator
from rm_trl.data.formats import PAIRWISE_SCHEMA
from rm_trl.data.pipeline import RESPONSE_IDS, REWARD_POSITIONS
from rm_trl.modeling import setup_pad_token
from rm_trl.packing import PackedRewardDataCollator
from rm_trl.reward_reading import PooledRewardReader, TokenRewardCapture, reward_reader

from .conftest import learnable_pairs, make_tiny_llama
from .test_packing import example_rows

TOL = 1e-5


def per_token_reference(model, rows):
    """Each sequence alone, unpadded: the head's score at every named position, in row/response/position order."""
    captured = {}
    handle = model.score.register_forward_hook(lambda m, a, out: captured.update(out=out))
    out = []
    with torch.no_grad():
        for row in rows:
            for response, positions in zip(row[RESPONSE_IDS], row[REWARD_POSITIONS]):
                model(input_ids=torch.tensor([row["prompt_ids"] + response]))
                out += [captured["out"][0, len(row["prompt_ids"]) + p] for p in positions]
    handle.remove()
    return torch.stack(out)


def with_step_positions(rows, seed=0):
    """Several reward positions per response (as step rewards will have): random offsets, the last token included."""
    rng = random.Random(seed)
    for row in rows:
        row[REWARD_POSITIONS] = [
            sorted({*rng.sample(range(len(r)), k=min(len(r), rng.randint(1, 3))), len(r) - 1})
            for r in row[RESPONSE_IDS]
        ]
    return rows


def test_prepared_rows_carry_outcome_positions(llama_tokenizer):
    data = Dataset.from_list(learnable_pairs(6))
    prepared = prepare_dataset(
        data,
        PAIRWISE_SCHEMA,
        llama_tokenizer,
        split="train",
        max_length=64,
        truncation="truncate_prompt",
        invalid_rows="error",
        append_eos=None,
    )
    for responses, positions in zip(prepared.dataset[RESPONSE_IDS], prepared.dataset[REWARD_POSITIONS]):
        assert positions == [[len(r) - 1] for r in responses]


@pytest.mark.parametrize("packed", [False, True], ids=["padded", "packed"])
def test_several_positions_per_response_equal_separate_forwards(llama_tokenizer, packed):
    model = make_tiny_llama(llama_tokenizer)
    setup_pad_token(model, llama_tokenizer)
    rows = with_step_positions(example_rows(llama_tokenizer))
    pad = llama_tokenizer.pad_token_id
    collator = PackedRewardDataCollator(pad_token_id=pad) if packed else RewardDataCollator(pad_token_id=pad)
    batch = collator(rows)
    assert batch["reward_index"].shape[0] == sum(len(p) for row in rows for p in row[REWARD_POSITIONS])
    with torch.no_grad():
        read = TokenRewardCapture(model)(model, batch)
    torch.testing.assert_close(read, per_token_reference(model, rows), atol=TOL, rtol=0)


@pytest.mark.parametrize("names_positions", [True, False], ids=["reward_index", "no_reward_index"])
def test_padded_decoder_read_is_the_standard_heads_pooled_reward(llama_tokenizer, names_positions):
    """For outcome positions, and for a user's collator that names none, the reward read is bit-for-bit the token
    the standard head pools."""
    model = make_tiny_llama(llama_tokenizer)
    setup_pad_token(model, llama_tokenizer)
    batch = RewardDataCollator(pad_token_id=llama_tokenizer.pad_token_id)(example_rows(llama_tokenizer))
    with torch.no_grad():
        pooled = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        if not names_positions:
            del batch["reward_index"]
        assert torch.equal(reward_reader(model)(model, batch), pooled)


def test_pooled_encoder_reads_one_reward_per_sequence_and_refuses_more(minilm_path):
    model = AutoModelForSequenceClassification.from_pretrained(minilm_path, num_labels=1).eval()
    tokenizer = AutoTokenizer.from_pretrained(minilm_path)
    assert isinstance(reward_reader(model), PooledRewardReader)
    rows = [
        {"row": 0, "prompt_ids": [101, 2054], "response_ids": [[2003, 102], [2129, 2017, 102]]},
        {"row": 1, "prompt_ids": [101], "response_ids": [[7592, 102], [2088, 102]]},
    ]
    batch = RewardDataCollator(pad_token_id=tokenizer.pad_token_id)(rows)
    with torch.no_grad():
        pooled = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        assert torch.equal(PooledRewardReader()(model, batch), pooled)
        rows[0][REWARD_POSITIONS] = [[0, 1], [2]]  # two rewards in one sequence: not what a pooler can give
        with pytest.raises(ValueError, match="one reward per sequence"):
            PooledRewardReader()(model, RewardDataCollator(pad_token_id=tokenizer.pad_token_id)(rows))


def test_trainer_reads_padded_and_packed_batches_alike(tiny_llama, tmp_path):
    """The same rows through the trainer's forward, packed and padded: the same rewards."""
    model, tokenizer = tiny_llama
    data = Dataset.from_list(learnable_pairs(8))
    rewards = {}
    for packing in (True, False):
        args = PairwiseRewardConfig(
            output_dir=str(tmp_path / str(packing)), packing=packing, report_to="none", max_steps=1
        )
        trainer = PairwiseRewardTrainer(model=model, args=args, processing_class=tokenizer, train_dataset=data)
        batch = trainer.data_collator([trainer.train_dataset[i] for i in range(4)])
        assert ("position_ids" in batch) == packing
        with torch.no_grad():
            rewards[packing] = trainer.compute_rewards(trainer.model.eval(), batch)
    torch.testing.assert_close(rewards[True], rewards[False], atol=TOL, rtol=0)
