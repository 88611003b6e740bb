"""Exact edits of a linear reward head: fold attribute outputs into one reward, bake a normalisation in.

Both are exact because nothing non-linear follows the head's last linear layer, so a consumer reading
`logits[:, 0]` gets the folded / normalised reward with no rm-trl code.
"""

from __future__ import annotations

import copy

import torch

from ..ensemble_heads import head_linear_name


def fold_reward_head(model, weights: list[float]):
    """Return a copy of `model` with one output: `sum_a weights[a] * output_a`.

    The last linear layer of the head (the one with `num_labels` outputs) is replaced by its weighted row sum,
    which is exact because nothing non-linear follows it. Consumers that read `logits[:, 0]` (TRL, PPO pipelines)
    then get the folded reward.
    """
    num_labels = model.config.num_labels
    if len(weights) != num_labels:
        raise ValueError(f"{len(weights)} weights for {num_labels} outputs")
    name = head_linear_name(model, num_labels)  # ValueError when the head has no such layer
    folded = copy.deepcopy(model)
    parent_name, _, attr = name.rpartition(".")
    parent = folded.get_submodule(parent_name) if parent_name else folded
    old = getattr(parent, attr)
    w = torch.tensor(weights, dtype=old.weight.dtype, device=old.weight.device)
    new = torch.nn.Linear(
        old.in_features, 1, bias=old.bias is not None, device=old.weight.device, dtype=old.weight.dtype
    )
    with torch.no_grad():
        new.weight.copy_(w @ old.weight)
        if old.bias is not None:
            new.bias.copy_((w @ old.bias).reshape(1))
    setattr(parent, attr, new)
    folded.config.num_labels = 1
    folded.config.id2label = {0: "reward"}
    folded.config.label2id = {"reward": 0}
    folded.num_labels = 1
    return folded


def bake_normalization(model, mean: float, std: float):
    """Return a copy of a one-output model whose head gives `(reward - mean) / std`, or `None` when the head's
    last layer has no bias (decoder `score` heads): then the statistics are stored and applied by rm-trl."""
    try:
        name = head_linear_name(model, 1)
    except ValueError:
        return None
    if model.get_submodule(name).bias is None:
        return None
    baked = copy.deepcopy(model)
    layer = baked.get_submodule(name)
    with torch.no_grad():
        layer.weight.div_(std)
        layer.bias.sub_(mean).div_(std)
    return baked
