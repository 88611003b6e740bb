"""Length-disentangled reward (ODIN, issue #17 item 2): the pure loss terms against references and gradcheck, the
trainer (two heads, the quality head exported exactly), and the collated response lengths it reads."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from datasets import Dataset
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers import AutoModelForSequenceClassification

from rm_trl import PairwiseRewardConfig, PairwiseRewardTrainer
from rm_trl.losses import batch_pearson, head_orthogonality, length_disentangle_loss

from .conftest import learnable_pairs, make_tiny_llama, tiny_pairwise_config


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.floats(-100, 100), st.floats(-100, 100)), min_size=2, max_size=30))
def test_pearson_matches_numpy(points):
    x, y = (torch.tensor(column, dtype=torch.float64) for column in zip(*points))
    got = float(batch_pearson(x, y))
    if x.std() < 1e-6 or y.std() < 1e-6:
        assert abs(got) <= 1.0 + 1e-9  # degenerate: bounded, never NaN
        return
    assert got == pytest.approx(float(np.corrcoef(x.numpy(), y.numpy())[0, 1]), abs=1e-6)


def test_constant_input_gives_zero_with_a_gradient():
    x = torch.ones(5, requires_grad=True)
    value = batch_pearson(x, torch.arange(5.0))
    assert float(value) == 0.0
    value.backward()
    assert x.grad is not None


def test_length_terms_reach_their_minimum_when_heads_separate():
    lengths = torch.tensor([3.0, 8.0, 5.0, 12.0, 7.0, 4.0])
    quality = torch.tensor([1.0, -1.0, 0.5, 0.2, -0.7, 0.1])
    perfect_length_head = 2.0 * lengths + 1.0
    value = float(length_disentangle_loss(quality, perfect_length_head, lengths))
    assert value == pytest.approx(abs(float(batch_pearson(quality, lengths))), abs=1e-6)
    worst = float(length_disentangle_loss(lengths.clone(), -lengths, lengths))  # quality = length, length head anti
    assert worst == pytest.approx(3.0, abs=1e-6)


def test_gradcheck():
    generator = torch.Generator().manual_seed(0)
    quality = torch.randn(8, dtype=torch.float64, generator=generator, requires_grad=True)
    length_head = torch.randn(8, dtype=torch.float64, generator=generator, requires_grad=True)
    lengths = torch.randint(2, 30, (8,), generator=generator).double()
    assert torch.autograd.gradcheck(lambda q, h: length_disentangle_loss(q, h, lengths), (quality, length_head))
    weight = torch.randn(2, 6, dtype=torch.float64, generator=generator, requires_grad=True)
    assert torch.autograd.gradcheck(head_orthogonality, (weight,))


def test_orthogonality_by_hand():
    assert float(head_orthogonality(torch.tensor([[1.0, -1.0, 0.0], [1.0, 1.0, -2.0]]))) == pytest.approx(0.0)
    assert float(head_orthogonality(torch.tensor([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0]]))) == pytest.approx(1.0)
    # centred first: a constant offset does not make rows parallel
    assert float(head_orthogonality(torch.tensor([[1.0, 0.0, -1.0], [5.0, 5.0, 5.0]]))) == pytest.approx(0.0, abs=1e-6)


def test_training_two_heads_and_exporting_the_quality_head(tmp_path, llama_tokenizer):
    model = make_tiny_llama(llama_tokenizer, num_labels=2)
    args = tiny_pairwise_config(tmp_path / "out", logging_steps=3, length_head=True)
    data = Dataset.from_list(learnable_pairs(48))
    trainer = PairwiseRewardTrainer(model=model, args=args, processing_class=llama_tokenizer, train_dataset=data)
    trainer.train()
    logged = [entry for entry in trainer.state.log_history if "length_pearson_quality" in entry]
    assert logged and all(-1 <= e["length_pearson_length_head"] <= 1 for e in logged)
    trained = trainer.model.eval()
    path = trainer.save_reward_model()
    config = json.loads(open(os.path.join(path, "config.json")).read())
    assert len(config["id2label"]) == 1 and config["rm_trl"]["num_labels"] == 1
    assert config["rm_trl"]["length_head"]["method"].startswith("ODIN")
    exported = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1).eval()
    ids = llama_tokenizer("Question 3 about tea: great helpful" + llama_tokenizer.eos_token, return_tensors="pt")
    with torch.no_grad():
        both = trained(**ids).logits
        read = exported(**ids).logits
    torch.testing.assert_close(read[:, 0], both[:, 0], atol=1e-5, rtol=0)  # the quality head, exactly


def test_refusals(tmp_path):
    with pytest.raises(ValueError, match="choose one"):
        PairwiseRewardConfig(output_dir=str(tmp_path), length_head=True, ensemble_heads=2)
    with pytest.raises(ValueError, match=">= 0"):
        PairwiseRewardConfig(output_dir=str(tmp_path), length_head=True, orthogonal_weight=-1)


def test_batches_carry_each_responses_length(llama_tokenizer):
    from rm_trl.data.collators import RewardDataCollator

    examples = [
        {"prompt_ids": [1, 2], "response_ids": [[3, 4, 5], [6]], "row": 0},
        {"prompt_ids": [1], "response_ids": [[7, 8], [9, 10, 11, 12]], "row": 1},
    ]
    batch = RewardDataCollator(pad_token_id=0)(examples)
    assert batch["response_lengths"].tolist() == [3, 1, 2, 4]
