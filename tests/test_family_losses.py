"""Listwise, pointwise and contrastive losses against independent plain-Python references, gradients, and the
identities that tie them to Bradley-Terry."""

import itertools
import math

import numpy as np
import pytest
import torch

from rm_trl.losses import (
    all_pairs_loss,
    best_of_n_loss,
    binary_cross_entropy_loss,
    bradley_terry_loss,
    info_nce_loss,
    pad_groups,
    plackett_luce_loss,
    regression_loss,
)


def softplus(x: float) -> float:
    return math.log1p(math.exp(-abs(x))) + max(x, 0.0)


def bt(diff: float) -> float:  # -log sigmoid(diff)
    return softplus(-diff)


def logsumexp(values) -> float:
    m = max(values)
    return m + math.log(sum(math.exp(v - m) for v in values))


# Rows of (rewards, ranks) with different K and ties.
GROUPS = [
    ([0.3, -1.2, 2.0], [1, 2, 0]),
    ([1.5, 0.5, 0.5, -0.7, 0.1], [0, 1, 1, 3, 3]),
    ([-0.4, 0.9], [1, 0]),
    ([0.2, 0.1, -2.0, 1.1], [0, 0, 2, 3]),
]


def ref_all_pairs(groups):
    per_row = []
    for rewards, ranks in groups:
        losses = [
            bt(rewards[i] - rewards[j]) for i, j in itertools.permutations(range(len(ranks)), 2) if ranks[i] < ranks[j]
        ]
        per_row.append(sum(losses) / len(losses))
    return sum(per_row) / len(per_row)


def ref_plackett_luce(groups):
    """Breslow ties: a response's risk set is every response ranked the same or worse."""
    total = 0.0
    for rewards, ranks in groups:
        nll = 0.0
        for i in range(len(ranks)):
            risk = [rewards[j] for j in range(len(ranks)) if ranks[j] >= ranks[i]]
            nll -= rewards[i] - logsumexp(risk)
        total += nll
    return total / len(groups)


def ref_best_of_n(groups):
    total = 0.0
    for rewards, ranks in groups:
        best = [i for i, r in enumerate(ranks) if r == min(ranks)]
        lse = logsumexp(rewards)
        total += -sum((rewards[i] - lse) / len(best) for i in best)
    return total / len(groups)


def batch(groups, dtype=torch.float32, requires_grad=False):
    flat = torch.tensor([r for rewards, _ in groups for r in rewards], dtype=dtype, requires_grad=requires_grad)
    ranks = torch.tensor([k for _, ranks in groups for k in ranks], dtype=dtype)
    sizes = torch.tensor([len(r) for r, _ in groups])
    return flat, ranks, sizes


def grouped(flat, ranks, sizes):
    rewards, mask = pad_groups(flat, sizes)
    padded_ranks, _ = pad_groups(ranks, sizes, fill=float("inf"))
    return rewards, padded_ranks, mask


@pytest.mark.parametrize(
    "loss_fn, reference",
    [(all_pairs_loss, ref_all_pairs), (plackett_luce_loss, ref_plackett_luce), (best_of_n_loss, ref_best_of_n)],
)
def test_listwise_losses_match_references(loss_fn, reference):
    got = loss_fn(*grouped(*batch(GROUPS))).item()
    assert got == pytest.approx(reference(GROUPS), abs=1e-5)


@pytest.mark.parametrize("loss_fn", [all_pairs_loss, plackett_luce_loss, best_of_n_loss])
def test_listwise_gradcheck_with_padding(loss_fn):
    flat, ranks, sizes = batch(GROUPS, dtype=torch.float64, requires_grad=True)

    def f(x):
        return loss_fn(*grouped(x, ranks, sizes))

    assert torch.autograd.gradcheck(f, (flat,))
    f(flat).backward()
    assert torch.isfinite(flat.grad).all()


def test_pad_groups_roundtrip():
    flat = torch.arange(7.0)
    padded, mask = pad_groups(flat, torch.tensor([3, 1, 3]), fill=-1.0)
    assert padded.tolist() == [[0, 1, 2], [3, -1, -1], [4, 5, 6]]
    assert torch.equal(padded[mask], flat)


def test_k2_identities_equal_bradley_terry():
    torch.manual_seed(0)
    chosen, rejected = torch.randn(8), torch.randn(8)
    rewards = torch.stack([chosen, rejected], 1)
    ranks = torch.tensor([[0.0, 1.0]]).repeat(8, 1)
    mask = torch.ones(8, 2, dtype=torch.bool)
    plain = bradley_terry_loss(chosen, rejected)
    for loss_fn in (plackett_luce_loss, best_of_n_loss, all_pairs_loss):
        torch.testing.assert_close(loss_fn(rewards, ranks, mask), plain)
    # InfoNCE with one pair per row and temperature 1 (no in-batch negatives) is Bradley-Terry too.
    torch.testing.assert_close(info_nce_loss(chosen, rejected, 1.0, in_batch_negatives=False), plain)
    torch.testing.assert_close(
        info_nce_loss(chosen[:1], rejected[:1], 1.0), bradley_terry_loss(chosen[:1], rejected[:1])
    )


def test_all_pairs_is_mean_of_bt_over_untied_pairs():
    rewards, ranks = GROUPS[1]
    pairs = [(i, j) for i, j in itertools.permutations(range(5), 2) if ranks[i] < ranks[j]]
    assert len(pairs) == 8  # C(5, 2) = 10 pairs, 2 of them tied
    chosen = torch.tensor([rewards[i] for i, _ in pairs])
    rejected = torch.tensor([rewards[j] for _, j in pairs])
    got = all_pairs_loss(*grouped(*batch([GROUPS[1]])))
    torch.testing.assert_close(got, bradley_terry_loss(chosen, rejected))


def test_plackett_luce_is_order_free_within_ties():
    rewards, ranks = GROUPS[1]
    swapped = [rewards[0], rewards[2], rewards[1], rewards[4], rewards[3]]  # permute inside the two ties
    a = plackett_luce_loss(*grouped(*batch([(rewards, ranks)])))
    b = plackett_luce_loss(*grouped(*batch([(swapped, ranks)])))
    torch.testing.assert_close(a, b)


def test_info_nce_reference_with_in_batch_negatives():
    chosen, rejected = [0.5, -0.3, 1.2], [0.1, 0.4, -1.0]
    for t in (1.0, 0.5):
        expected = np.mean([-(c / t - logsumexp([c / t] + [r / t for r in rejected])) for c in chosen])
        got = info_nce_loss(torch.tensor(chosen), torch.tensor(rejected), temperature=t).item()
        assert got == pytest.approx(expected, abs=1e-6)


def test_regression_losses_reference_and_masking():
    preds = torch.tensor([[0.5, 2.0], [1.0, -1.0], [3.0, 0.0]])
    targets = torch.tensor([[1.0, float("nan")], [1.0, 2.0], [-1.0, 0.5]])
    present = [(0.5, 1.0), (1.0, 1.0), (-1.0, 2.0), (3.0, -1.0), (0.0, 0.5)]
    mse = np.mean([(p - t) ** 2 for p, t in present])
    assert regression_loss(preds, targets, "mse").item() == pytest.approx(mse)

    def huber(p, t, d):
        e = abs(p - t)
        return 0.5 * e * e if e <= d else d * (e - 0.5 * d)

    assert regression_loss(preds, targets, "huber", 1.0).item() == pytest.approx(
        np.mean([huber(p, t, 1.0) for p, t in present])
    )
    # A missing target contributes no gradient, and the gradient is finite.
    p = preds.clone().requires_grad_(True)
    regression_loss(p, targets, "mse").backward()
    assert p.grad[0, 1] == 0 and torch.isfinite(p.grad).all()


def test_huber_is_robust_to_an_outlier():
    preds = torch.zeros(5)
    clean = torch.tensor([0.1, -0.2, 0.3, 0.0, 0.1])
    outlier = clean.clone()
    outlier[0] = 25.0
    grow_mse = regression_loss(preds, outlier, "mse") / regression_loss(preds, clean, "mse")
    grow_huber = regression_loss(preds, outlier, "huber") / regression_loss(preds, clean, "huber")
    assert grow_huber < grow_mse / 10


def test_bce_reference():
    logits = torch.tensor([[2.0], [-1.0], [0.3]])
    labels = torch.tensor([[1.0], [0.0], [float("nan")]])
    expected = np.mean([softplus(-2.0), softplus(-1.0)])  # -log sigmoid(2), -log(1 - sigmoid(-1))
    assert binary_cross_entropy_loss(logits, labels).item() == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("kind", ["mse", "huber"])
def test_regression_gradcheck(kind):
    preds = torch.randn(4, 2, dtype=torch.float64, requires_grad=True)
    targets = torch.tensor([[1.0, float("nan")], [0.0, 3.0], [-2.0, 1.0], [float("nan"), 0.5]], dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda p: regression_loss(p, targets, kind, 0.7), (preds,))


def test_bce_and_infonce_gradcheck():
    logits = torch.randn(5, dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([1.0, 0.0, 1.0, float("nan"), 0.0], dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda z: binary_cross_entropy_loss(z, labels), (logits,))
    chosen = torch.randn(4, dtype=torch.float64, requires_grad=True)
    rejected = torch.randn(4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda c, r: info_nce_loss(c, r, 0.5), (chosen, rejected))
