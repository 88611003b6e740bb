"""Reward-model losses as pure functions: reward tensors in, a scalar loss tensor out.

Nothing here knows about models, batches or Trainers, so each loss can be tested against a hand computation and
reused by any training loop. All losses average over the examples of the batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def bradley_terry_loss(
    chosen: torch.Tensor,
    rejected: torch.Tensor,
    margin: torch.Tensor | None = None,
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """Bradley-Terry negative log-likelihood `-log sigmoid(r_c - r_r - m)`, averaged over pairs.

    `margin` (Llama 2) asks for a larger gap on pairs the annotators found clearly different. `label_smoothing`
    eps gives the conservative form `-(1 - eps) log sigmoid(d) - eps log sigmoid(-d)`, which assumes a fraction
    eps of the labels are flipped and so bounds how far rewards are pushed apart.
    """
    diff = chosen - rejected
    if margin is not None:
        diff = diff - margin
    loss = -F.logsigmoid(diff)
    if label_smoothing:
        loss = (1.0 - label_smoothing) * loss - label_smoothing * F.logsigmoid(-diff)
    return loss.mean()


def pairwise_hinge_loss(
    chosen: torch.Tensor,
    rejected: torch.Tensor,
    margin: torch.Tensor | None = None,
    hinge_margin: float = 1.0,
) -> torch.Tensor:
    """Margin-ranking loss `max(0, hinge_margin + m - (r_c - r_r))`: no gradient once a pair is separated enough."""
    required = hinge_margin if margin is None else hinge_margin + margin
    return F.relu(required - (chosen - rejected)).mean()


def reward_centering_penalty(rewards: torch.Tensor) -> torch.Tensor:
    """`mean(r^2)` (Eisenstein et al. 2023): pins the free offset of difference-only losses near zero."""
    return rewards.pow(2).mean()
