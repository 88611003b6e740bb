"""Reward-model losses as pure functions: reward tensors in, a scalar loss tensor out.

Nothing here knows about models, batches or Trainers, so each loss can be tested against a hand computation and
reused by any training loop. All losses average over the examples of the batch.

Each family's losses are registered by name at the end (`PAIRWISE_LOSS_FUNCTIONS`, ...): a `LossSpec` is the pure
function and the config fields it reads, so a config's `loss_type` choices, the trainer's dispatch and the loss
description recorded in the export all come from one table.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

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


def batch_pearson(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Pearson correlation of two `[N]` tensors, differentiable; 0 when either is constant (nothing to correlate)."""
    x, y = x - x.mean(), y - y.mean()
    denominator = x.norm() * y.norm()
    return (x * y).sum() / denominator if denominator > 1e-12 else (x * y).sum() * 0.0


def length_disentangle_loss(quality: torch.Tensor, length_reward: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """ODIN's length terms (Chen et al. 2024, arXiv:2402.07319, Sec. 5): `(1 - rho(length head, length))` pulls the
    length head onto response length, `|rho(quality head, length)|` pushes the quality head off it (Pearson over the
    batch's responses, as the authors' `gemma_two_head.py`, per process here)."""
    lengths = lengths.to(quality.dtype)
    return (1.0 - batch_pearson(length_reward, lengths)) + batch_pearson(quality, lengths).abs()


def head_orthogonality(weight: torch.Tensor) -> torch.Tensor:
    """ODIN's orthogonality term `|w_Q . w_L|` on the two head rows of `weight` `[2, hidden]`, each centred and
    scaled to unit norm first (the authors' `proj_with_normalized_weight`)."""
    centred = weight - weight.mean(dim=-1, keepdim=True)
    unit = centred / centred.norm(dim=-1, keepdim=True).clamp(min=1e-8)
    return (unit[0] * unit[1]).sum().abs()


# ----- grouping helper ----------------------------------------------------------------------------------------------
def pad_groups(values: torch.Tensor, group_sizes: torch.Tensor, fill: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Turn a flat `[N]` tensor of per-response values into `[rows, K_max]` plus a validity mask.

    Rows hold `group_sizes[i]` consecutive values each (a row's K responses); the rest is `fill`.
    """
    sizes = group_sizes.tolist()
    k_max = max(sizes)
    padded = values.new_full((len(sizes), k_max), fill)
    mask = torch.zeros((len(sizes), k_max), dtype=torch.bool, device=values.device)
    row = torch.repeat_interleave(torch.arange(len(sizes), device=values.device), group_sizes.to(values.device))
    starts = torch.cumsum(group_sizes, 0) - group_sizes
    col = torch.arange(values.shape[0], device=values.device) - torch.repeat_interleave(starts, group_sizes).to(
        values.device
    )
    padded = padded.index_put((row, col), values)
    mask[row, col] = True
    return padded, mask


# ----- listwise: K ranked responses per prompt ----------------------------------------------------------------------
def all_pairs_loss(rewards: torch.Tensor, ranks: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """InstructGPT's K-wise loss: Bradley-Terry over every untied ordered pair of a prompt's responses.

    `rewards`, `ranks` (0 = best) and `mask` are `[rows, K]`. Each row's loss is the mean over its untied pairs
    (C(K, 2) of them without ties), so a prompt counts once however large K is; rows are then averaged.
    """
    better = (ranks[:, :, None] < ranks[:, None, :]) & mask[:, :, None] & mask[:, None, :]
    pair_loss = -F.logsigmoid(rewards[:, :, None] - rewards[:, None, :])
    n_pairs = better.sum(dim=(1, 2))
    per_row = torch.where(better, pair_loss, 0.0).sum(dim=(1, 2)) / n_pairs.clamp(min=1)
    return per_row[n_pairs > 0].mean()


def plackett_luce_loss(rewards: torch.Tensor, ranks: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Plackett-Luce negative log-likelihood of each row's ranking, averaged over rows.

    The ranking is built best first: each response's term is `r_i - logsumexp(r_j for j not ranked above i)`.
    Ties follow Breslow's rule: tied responses share one risk set (all responses of their rank or worse), which
    keeps the loss order-free within a tie. With K = 2 and no tie it is exactly Bradley-Terry.
    """
    at_or_below = (ranks[:, None, :] >= ranks[:, :, None]) & mask[:, None, :]  # [rows, i, j]: j in i's risk set
    # Padding positions get themselves as risk set: a zero term with a finite gradient (instead of logsumexp(-inf)).
    at_or_below = at_or_below | torch.eye(ranks.shape[1], dtype=torch.bool, device=ranks.device)
    scores = rewards[:, None, :].expand_as(at_or_below).masked_fill(~at_or_below, float("-inf"))
    terms = rewards - torch.logsumexp(scores, dim=2)
    return -torch.where(mask, terms, 0.0).sum(dim=1).mean()


def best_of_n_loss(rewards: torch.Tensor, ranks: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Best-of-N softmax cross-entropy (Ziegler et al. 2019): the best response against all the others.

    The target is uniform over the row's best-ranked responses (one, unless the best rank is tied). With N = 2 and
    no tie it is exactly Bradley-Terry.
    """
    best_rank = torch.where(mask, ranks, float("inf")).min(dim=1, keepdim=True).values
    target = ((ranks == best_rank) & mask).float()
    target = target / target.sum(dim=1, keepdim=True)
    log_probs = torch.log_softmax(rewards.masked_fill(~mask, float("-inf")), dim=1)
    return -torch.where(target > 0, target * log_probs, 0.0).sum(dim=1).mean()


# ----- pointwise: a score (or several attribute scores) per response ------------------------------------------------
def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return torch.where(mask, values, 0.0).sum() / mask.sum().clamp(min=1)


def regression_loss(
    predictions: torch.Tensor, targets: torch.Tensor, kind: str = "mse", huber_delta: float = 1.0
) -> torch.Tensor:
    """Mean squared error (`kind="mse"`) or Huber loss (`kind="huber"`, quadratic within `huber_delta`, linear
    beyond, so outlier ratings pull less), averaged over the targets that are present. NaN marks a missing target
    (an attribute a row does not rate); it contributes neither loss nor gradient.
    """
    present = ~torch.isnan(targets)
    safe_targets = torch.where(present, targets, predictions.detach())
    if kind == "mse":
        values = (predictions - safe_targets) ** 2
    elif kind == "huber":
        values = F.huber_loss(predictions, safe_targets, reduction="none", delta=huber_delta)
    else:
        raise ValueError(f"unknown regression loss {kind!r}")
    return _masked_mean(values, present)


def binary_cross_entropy_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy for 0/1 labels (thumbs up / down), on the reward used as a logit; NaN = missing."""
    present = ~torch.isnan(labels)
    safe_labels = torch.where(present, labels, 0.0)
    values = F.binary_cross_entropy_with_logits(logits, safe_labels, reduction="none")
    return _masked_mean(values, present)


# ----- contrastive --------------------------------------------------------------------------------------------------
def info_nce_loss(
    chosen: torch.Tensor, rejected: torch.Tensor, temperature: float = 1.0, in_batch_negatives: bool = True
) -> torch.Tensor:
    """InfoNCE: each chosen reward against its own rejected one and, with `in_batch_negatives`, every other
    rejected reward of the batch, as a softmax over `reward / temperature`.

    In-batch negatives are the rewards of other prompts' rejected responses, so the loss also asks that a good
    answer outscore bad answers to other prompts: rewards become comparable across prompts, not only within one.
    With one pair (or without in-batch negatives) and temperature 1 it is exactly Bradley-Terry.
    """
    if in_batch_negatives:
        negatives = rejected[None, :].expand(chosen.shape[0], -1)
    else:
        negatives = rejected[:, None]
    logits = torch.cat([chosen[:, None], negatives], dim=1) / temperature
    return -torch.log_softmax(logits, dim=1)[:, 0].mean()


# ----- stepwise (process rewards): a logit at every step ----------------------------------------------------------
# Every stepwise loss takes the flat step logits `[P]`, their labels `[P]` (1 / 0, soft in [0, 1], NaN = masked: no
# loss, no gradient) and `position_counts` `[R]` (steps per solution, in order), as the collators lay them out.
def step_bce_loss(
    logits: torch.Tensor, labels: torch.Tensor, position_counts: torch.Tensor, error_weight: float = 1.0
) -> torch.Tensor:
    """Binary cross-entropy of every labelled step against its label (hard or soft), averaged over the labelled
    steps of the batch (a long solution weighs more than a short one, as in TRL's PRM training). `error_weight`
    weighs a wrong step's term (label 0; a soft label `p` gets `1 + (w - 1)(1 - p)`) in a weighted mean: wrong steps
    are the minority when labels after the first error are masked."""
    if error_weight == 1.0:
        return binary_cross_entropy_loss(logits, labels)
    present = ~torch.isnan(labels)
    safe_labels = torch.where(present, labels, 1.0)
    values = F.binary_cross_entropy_with_logits(logits, safe_labels, reduction="none")
    weights = torch.where(present, 1.0 + (error_weight - 1.0) * (1.0 - safe_labels), 0.0)
    return (values * weights).sum() / weights.sum().clamp(min=1e-12)


def last_step_loss(logits: torch.Tensor, labels: torch.Tensor, position_counts: torch.Tensor) -> torch.Tensor:
    """Outcome supervision from step data: binary cross-entropy of each solution's last labelled step only,
    averaged over the solutions that have one."""
    grouped_logits, _ = pad_groups(logits, position_counts)
    grouped_labels, _ = pad_groups(labels, position_counts, fill=float("nan"))
    labelled = ~torch.isnan(grouped_labels)
    positions = torch.arange(labelled.shape[1], device=labels.device).expand_as(labelled)
    last = torch.where(labelled, positions, -1).max(dim=1).values  # [R], -1: no labelled step
    keep = last >= 0
    index = last.clamp(min=0)[:, None]
    chosen_logits = grouped_logits.gather(1, index)[:, 0]
    chosen_labels = torch.where(keep, grouped_labels.gather(1, index)[:, 0], float("nan"))
    return binary_cross_entropy_loss(chosen_logits, chosen_labels)


def pqm_loss(
    logits: torch.Tensor, labels: torch.Tensor, position_counts: torch.Tensor, margin: float = 4.0
) -> torch.Tensor:
    r"""The comparative loss of Process Q-value Models (Li & Li, "Process Reward Model with Q-Value Rankings",
    arXiv:2410.11287, ICLR 2025), its practical form (the paper's Eq. 10), with margin `margin` (zeta).

    A step's logit is its Q-value (the paper's Q = sigmoid^-1 of the probability that the trajectory ends
    correct). Within one solution, with its correct steps `c_1 .. c_|C|` in step order, its wrong steps `W`, and
    `c_0` the question alone with `Q_{c_0} = 0`:

        L = -1/n * sum_{t} log( exp(Q_{c_t}) / (sum_{q=0..t} exp(Q_{c_q}) + sum_{w in W} exp(Q_w + zeta)) )

    over `t = 1 .. |C|`, plus `t = 0` when `W` is not empty; `n` counts those terms. It asks that Q-values rise
    along the correct steps and that every wrong step sit at least `zeta` below every correct one (and below the
    question). Solutions average their terms; the batch averages its solutions.

    Source: the paper's Eq. 10 as the authors' released code implements it (github.com/WindyLee0822/Process_Q_Model,
    `train_main.py`, `ranking_loss`, whose README names it "the practical version as in Eq.10"; loss type `rank`,
    `--zeta` default 4; the released checkpoints use zeta 2 and 4, the default here is 4). The paper's own text was
    not retrievable while this was written: the equation above is reconstructed from that code and the paper's
    description, with two deliberate differences from the code: the code's denominator counts `exp(Q_{c_t})`
    twice for a correct step that is not the solution's first step (a cumulative-sum off-by-one; here every term
    is a proper softmax over `{c_0..c_t} + W`), and it adds 1e-5 inside the log (here a log-sum-exp, exact).

    Edge cases: a solution with no wrong step keeps only the rising-correct terms; one with no correct step keeps
    only `t = 0` (the question above every wrong step); masked (NaN) steps are in neither set; a solution with no
    labelled step is left out (a batch with none gives a zero loss that keeps the graph). Soft labels are
    thresholded: >= 0.5 correct.
    """
    q, _ = pad_groups(logits, position_counts)  # [R, K]
    grouped_labels, _ = pad_groups(labels, position_counts, fill=float("nan"))
    labelled = ~torch.isnan(grouped_labels)
    correct = labelled & (grouped_labels >= 0.5)
    wrong = labelled & (grouped_labels < 0.5)
    k = q.shape[1]
    scores = q + margin * wrong.to(q.dtype)  # exp(Q_w + zeta) for wrong steps
    earlier = torch.ones(k, k, dtype=torch.bool, device=q.device).tril()  # [t, j]: j <= t
    in_denominator = (correct[:, None, :] & earlier[None]) | wrong[:, None, :]  # [R, t, j]
    masked = scores[:, None, :].expand(-1, k, -1).masked_fill(~in_denominator, float("-inf"))
    start = q.new_zeros(q.shape[0], k, 1)  # exp(Q_{c_0}) = exp(0), in every denominator
    correct_terms = torch.logsumexp(torch.cat([start, masked], dim=2), dim=2) - q  # [R, K]
    question_term = torch.logsumexp(
        torch.cat([start[:, 0], scores.masked_fill(~wrong, float("-inf"))], dim=1), dim=1
    )  # [R]: -log(exp(0) / (exp(0) + sum_w exp(Q_w + zeta)))
    has_wrong = wrong.any(dim=1)
    total = torch.where(correct, correct_terms, 0.0).sum(dim=1) + torch.where(has_wrong, question_term, 0.0)
    terms = correct.sum(dim=1) + has_wrong.long()
    kept = terms > 0
    if not kept.any():
        return logits.sum() * 0.0
    return (total[kept] / terms[kept]).mean()


# ----- registries: loss_type -> function ----------------------------------------------------------------------------
@dataclass(frozen=True)
class LossSpec:
    """A registered loss: the pure function, and `options` mapping its keyword arguments to config fields."""

    fn: Callable[..., torch.Tensor]
    options: Mapping[str, str] = field(default_factory=dict)
    off_when_zero: frozenset[str] = frozenset()  # config fields whose 0.0 means "not in use" (left out of the record)

    def settings(self, config: Any) -> dict[str, Any]:
        """The function's keyword arguments read from `config`."""
        return {keyword: getattr(config, name) for keyword, name in self.options.items()}

    def describe(self, config: Any) -> dict[str, Any]:
        """The config fields this loss reads, by config name, for the export's loss description (an option in
        `off_when_zero` left at 0.0 is not in use and is left out)."""
        values = {name: getattr(config, name) for name in self.options.values()}
        return {k: v for k, v in values.items() if not (k in self.off_when_zero and v == 0.0)}


PAIRWISE_LOSS_FUNCTIONS: dict[str, LossSpec] = {
    "bradley_terry": LossSpec(
        bradley_terry_loss, {"label_smoothing": "label_smoothing"}, off_when_zero=frozenset({"label_smoothing"})
    ),
    "hinge": LossSpec(pairwise_hinge_loss, {"hinge_margin": "hinge_margin"}),
}
LISTWISE_LOSS_FUNCTIONS: dict[str, LossSpec] = {
    "all_pairs": LossSpec(all_pairs_loss),
    "plackett_luce": LossSpec(plackett_luce_loss),
    "best_of_n": LossSpec(best_of_n_loss),
}
POINTWISE_LOSS_FUNCTIONS: dict[str, LossSpec] = {
    "mse": LossSpec(partial(regression_loss, kind="mse")),
    "huber": LossSpec(partial(regression_loss, kind="huber"), {"huber_delta": "huber_delta"}),
    "bce": LossSpec(binary_cross_entropy_loss),
}
CONTRASTIVE_LOSS_FUNCTIONS: dict[str, LossSpec] = {
    "infonce": LossSpec(info_nce_loss, {"temperature": "temperature", "in_batch_negatives": "in_batch_negatives"}),
    "margin_ranking": LossSpec(pairwise_hinge_loss, {"hinge_margin": "ranking_margin"}),
}
STEPWISE_LOSS_FUNCTIONS: dict[str, LossSpec] = {
    "step_bce": LossSpec(step_bce_loss, {"error_weight": "step_error_weight"}),
    "last_step": LossSpec(last_step_loss),
    "pqm": LossSpec(pqm_loss, {"margin": "pqm_margin"}),
}
