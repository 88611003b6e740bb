import torch

from rm_trl.data import RewardDataCollator


def test_collator_orders_pairs_and_pads_right():
    examples = [
        {"row": 7, "prompt_ids": [1, 2], "response_ids": [[3, 4, 5], [6]], "margin": 0.5},
        {"row": 9, "prompt_ids": [1], "response_ids": [[8], [9, 10]], "margin": 0.0},
    ]
    batch = RewardDataCollator(pad_token_id=0, target_names=("margin",))(examples)
    assert batch["input_ids"].tolist() == [[1, 2, 3, 4, 5], [1, 2, 6, 0, 0], [1, 8, 0, 0, 0], [1, 9, 10, 0, 0]]
    assert batch["attention_mask"].sum(1).tolist() == [5, 3, 2, 3]
    assert batch["group_sizes"].tolist() == [2, 2] and batch["row"].tolist() == [7, 9]
    assert torch.equal(batch["margin"], torch.tensor([0.5, 0.0]))


def test_collator_pad_to_multiple_and_k_responses():
    examples = [{"row": 0, "prompt_ids": [1], "response_ids": [[2], [3, 3], [4, 4, 4]]}]
    batch = RewardDataCollator(pad_token_id=99, pad_to_multiple_of=8)(examples)
    assert batch["input_ids"].shape == (3, 8)  # a K-wise row costs K sequences
    assert batch["input_ids"][0, 2:].eq(99).all()
