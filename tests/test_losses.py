import math

import numpy as np
import pytest
import torch

from rm_trl.losses import bradley_terry_loss, pairwise_hinge_loss, reward_centering_penalty


def log_sigmoid(x: float) -> float:
    return -math.log1p(math.exp(-x))


def test_bradley_terry_hand_computed():
    chosen = torch.tensor([1.0, 0.0, -2.0])
    rejected = torch.tensor([0.0, 0.0, 1.0])
    # -log sigmoid(1) = 0.31326, -log sigmoid(0) = log 2 = 0.69315, -log sigmoid(-3) = 3.04859
    expected = (0.3132617 + 0.6931472 + 3.0485874) / 3
    assert bradley_terry_loss(chosen, rejected).item() == pytest.approx(expected, abs=1e-6)


def test_bradley_terry_margin_and_smoothing_hand_computed():
    chosen = torch.tensor([2.0, 0.5])
    rejected = torch.tensor([1.0, 1.0])
    margin = torch.tensor([0.5, 1.0])
    diffs = [2.0 - 1.0 - 0.5, 0.5 - 1.0 - 1.0]
    expected_margin = np.mean([-log_sigmoid(d) for d in diffs])
    assert bradley_terry_loss(chosen, rejected, margin).item() == pytest.approx(expected_margin, abs=1e-6)
    eps = 0.1
    expected_ls = np.mean([-(1 - eps) * log_sigmoid(d) - eps * log_sigmoid(-d) for d in diffs])
    got = bradley_terry_loss(chosen, rejected, margin, label_smoothing=eps).item()
    assert got == pytest.approx(expected_ls, abs=1e-6)


def test_identities_margin_zero_and_smoothing_zero_equal_plain_bt():
    torch.manual_seed(0)
    chosen, rejected = torch.randn(16), torch.randn(16)
    plain = bradley_terry_loss(chosen, rejected)
    assert torch.allclose(bradley_terry_loss(chosen, rejected, torch.zeros(16)), plain)
    assert torch.allclose(bradley_terry_loss(chosen, rejected, label_smoothing=0.0), plain)


def test_hinge_hand_computed():
    chosen = torch.tensor([3.0, 0.2, -1.0])
    rejected = torch.tensor([0.0, 0.0, 0.0])
    # max(0, 1 - 3) = 0, max(0, 1 - 0.2) = 0.8, max(0, 1 + 1) = 2
    assert pairwise_hinge_loss(chosen, rejected).item() == pytest.approx((0 + 0.8 + 2) / 3, abs=1e-6)
    margin = torch.tensor([2.5, 0.0, 0.0])  # first pair now needs a gap of 3.5
    assert pairwise_hinge_loss(chosen, rejected, margin).item() == pytest.approx((0.5 + 0.8 + 2) / 3, abs=1e-6)


def test_centering_penalty():
    rewards = torch.tensor([[1.0, -3.0], [2.0, 0.0]])
    assert reward_centering_penalty(rewards).item() == pytest.approx((1 + 9 + 4 + 0) / 4)


@pytest.mark.parametrize(
    "loss_fn",
    [
        lambda c, r, m: bradley_terry_loss(c, r),
        lambda c, r, m: bradley_terry_loss(c, r, m, label_smoothing=0.2),
        lambda c, r, m: pairwise_hinge_loss(c, r, m, hinge_margin=0.3),
    ],
)
def test_gradcheck_float64(loss_fn):
    torch.manual_seed(1)
    chosen = torch.randn(6, dtype=torch.float64, requires_grad=True)
    rejected = torch.randn(6, dtype=torch.float64, requires_grad=True)
    margin = torch.rand(6, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda c, r: loss_fn(c, r, margin), (chosen, rejected))


def test_bradley_terry_gradient_matches_closed_form():
    chosen = torch.tensor([0.3, -1.2], requires_grad=True)
    rejected = torch.tensor([0.1, 0.4])
    bradley_terry_loss(chosen, rejected).backward()
    # d/dc mean(-log sigmoid(c - r)) = -(1 - sigmoid(c - r)) / n
    expected = -(1 - torch.sigmoid(chosen.detach() - rejected)) / 2
    assert torch.allclose(chosen.grad, expected, atol=1e-7)
