"""Stepwise (process reward) losses: reference values computed by hand with python floats, edge cases (masked
steps, solutions with no wrong / no correct / no labelled step), and float64 gradchecks."""

from __future__ import annotations

import math

import pytest
import torch

from rm_trl.losses import STEPWISE_LOSS_FUNCTIONS, last_step_loss, pqm_loss, step_bce_loss

NAN = float("nan")


def bce(logit: float, label: float) -> float:
    p = 1 / (1 + math.exp(-logit))
    return -(label * math.log(p) + (1 - label) * math.log(1 - p))


def t(values, dtype=torch.float64):
    return torch.tensor(values, dtype=dtype)


# Two solutions: [1.0, 2.0, -1.0] labelled [1, 0, masked], and [0.5, 0.3] labelled [1, 1].
LOGITS, LABELS, COUNTS = [1.0, 2.0, -1.0, 0.5, 0.3], [1.0, 0.0, NAN, 1.0, 1.0], [3, 2]


def test_registry_names_the_three_losses():
    assert set(STEPWISE_LOSS_FUNCTIONS) == {"step_bce", "last_step", "pqm"}
    assert dict(STEPWISE_LOSS_FUNCTIONS["pqm"].options) == {"margin": "pqm_margin"}


def test_step_bce_reference_hard_soft_and_masked():
    expected = (bce(1.0, 1) + bce(2.0, 0) + bce(0.5, 1) + bce(0.3, 1)) / 4  # the masked step is not counted
    got = step_bce_loss(t(LOGITS), t(LABELS), torch.tensor(COUNTS))
    assert got.item() == pytest.approx(expected, abs=1e-12)
    soft = step_bce_loss(t([0.2, -0.7]), t([0.75, 0.1]), torch.tensor([2]))
    assert soft.item() == pytest.approx((bce(0.2, 0.75) + bce(-0.7, 0.1)) / 2, abs=1e-12)


def test_step_bce_error_weight_reference_and_gradcheck():
    w = 3.0  # wrong steps weigh 3, right ones 1, masked 0; a soft label p weighs 1 + (w - 1)(1 - p)
    expected = (bce(1.0, 1) + w * bce(2.0, 0) + bce(0.5, 1) + bce(0.3, 1)) / (1 + w + 1 + 1)
    got = step_bce_loss(t(LOGITS), t(LABELS), torch.tensor(COUNTS), error_weight=w)
    assert got.item() == pytest.approx(expected, abs=1e-12)
    soft = step_bce_loss(t([0.2]), t([0.75]), torch.tensor([1]), error_weight=w)
    assert soft.item() == pytest.approx(bce(0.2, 0.75), abs=1e-12)  # one step: its weight cancels
    assert dict(STEPWISE_LOSS_FUNCTIONS["step_bce"].options) == {"error_weight": "step_error_weight"}
    logits = t(LOGITS).requires_grad_()
    assert torch.autograd.gradcheck(
        lambda x: step_bce_loss(x, t(LABELS), torch.tensor(COUNTS), error_weight=w), (logits,)
    )
    step_bce_loss(logits, t(LABELS), torch.tensor(COUNTS), error_weight=w).backward()
    assert logits.grad[2].item() == 0.0  # masked


def test_masked_step_gets_no_gradient():
    logits = t(LOGITS).requires_grad_()
    for name, spec in STEPWISE_LOSS_FUNCTIONS.items():
        logits.grad = None
        spec.fn(logits, t(LABELS), torch.tensor(COUNTS)).backward()
        assert logits.grad[2].item() == 0.0, name


def test_last_step_reference_uses_the_last_labelled_step():
    # solution 1's last step is masked: its last labelled step is step 2 (logit 2.0, label 0)
    expected = (bce(2.0, 0) + bce(0.3, 1)) / 2
    got = last_step_loss(t(LOGITS), t(LABELS), torch.tensor(COUNTS))
    assert got.item() == pytest.approx(expected, abs=1e-12)
    # a solution with no labelled step is left out of the mean
    got = last_step_loss(t([0.4, 9.0, -3.0]), t([NAN, NAN, 0.0]), torch.tensor([2, 1]))
    assert got.item() == pytest.approx(bce(-3.0, 0), abs=1e-12)


def pqm_reference(solutions, zeta):
    """Li & Li 2024 Eq. 10 by hand: per solution, correct steps in order (Q_{c_0} = 0 prepended), wrong steps
    with the margin; mean of the solution's terms, then of the solutions."""
    per_solution = []
    for q_values, labels in solutions:
        correct = [q for q, y in zip(q_values, labels) if y == y and y >= 0.5]
        wrong = [q for q, y in zip(q_values, labels) if y == y and y < 0.5]
        wrong_sum = sum(math.exp(q + zeta) for q in wrong)
        chain = [0.0, *correct]
        terms = []
        if wrong:
            terms.append(-math.log(1.0 / (1.0 + wrong_sum)))
        for i in range(1, len(chain)):
            denominator = sum(math.exp(q) for q in chain[: i + 1]) + wrong_sum
            terms.append(-math.log(math.exp(chain[i]) / denominator))
        if terms:
            per_solution.append(sum(terms) / len(terms))
    return sum(per_solution) / len(per_solution)


@pytest.mark.parametrize("zeta", [0.0, 2.0, 4.0])
def test_pqm_reference(zeta):
    solutions = [([1.0, 2.0, -1.0], [1, 0, NAN]), ([0.5, 0.3], [1, 1])]
    got = pqm_loss(t(LOGITS), t(LABELS), torch.tensor(COUNTS), margin=zeta)
    assert got.item() == pytest.approx(pqm_reference(solutions, zeta), abs=1e-12)


def test_pqm_hand_value_of_one_solution():
    # Q = [0.5 correct, -1.0 wrong, 0.2 correct], zeta = 1:
    #   t=0: log(1 + e^0), t=1: log(1 + e^0.5 + e^0) - 0.5, t=2: log(1 + e^0.5 + e^0.2 + e^0) - 0.2
    w = math.exp(-1.0 + 1.0)
    expected = (
        math.log(1 + w) + math.log(1 + math.exp(0.5) + w) - 0.5 + math.log(1 + math.exp(0.5) + math.exp(0.2) + w) - 0.2
    ) / 3
    got = pqm_loss(t([0.5, -1.0, 0.2]), t([1.0, 0.0, 1.0]), torch.tensor([3]), margin=1.0)
    assert got.item() == pytest.approx(expected, abs=1e-12)


def test_pqm_edge_cases():
    # all wrong: only the question term; all correct: only the rising terms; soft labels thresholded at 0.5
    only_wrong = pqm_loss(t([0.3, -0.2]), t([0.0, 0.2]), torch.tensor([2]), margin=2.0)
    assert only_wrong.item() == pytest.approx(math.log(1 + math.exp(2.3) + math.exp(1.8)), abs=1e-12)
    only_correct = pqm_loss(t([0.3]), t([0.9]), torch.tensor([1]), margin=2.0)
    assert only_correct.item() == pytest.approx(math.log(1 + math.exp(0.3)) - 0.3, abs=1e-12)
    # nothing labelled: zero, differentiable
    logits = t([0.3, 0.1]).requires_grad_()
    loss = pqm_loss(logits, t([NAN, NAN]), torch.tensor([2]))
    loss.backward()
    assert loss.item() == 0.0 and torch.equal(logits.grad, torch.zeros(2, dtype=torch.float64))


def test_pqm_prefers_the_paper_ranking():
    """Loss is lower when correct steps rise and wrong steps sit below the question by more than zeta."""
    labels, counts = t([1.0, 1.0, 0.0, 0.0]), torch.tensor([4])
    good = pqm_loss(t([1.0, 2.0, -6.0, -7.0]), labels, counts, margin=4.0)
    bad = pqm_loss(t([2.0, 1.0, 1.0, 0.0]), labels, counts, margin=4.0)
    assert good < bad


def test_float32_large_logits_stay_finite():
    logits = torch.tensor([80.0, -80.0, 60.0], requires_grad=True)
    labels, counts = torch.tensor([1.0, 0.0, 1.0]), torch.tensor([2, 1])
    for name, spec in STEPWISE_LOSS_FUNCTIONS.items():
        loss = spec.fn(logits, labels, counts)
        (grad,) = torch.autograd.grad(loss, logits)
        assert torch.isfinite(loss) and torch.isfinite(grad).all(), name


@pytest.mark.parametrize("name", sorted(STEPWISE_LOSS_FUNCTIONS))
def test_gradcheck(name):
    fn = STEPWISE_LOSS_FUNCTIONS[name].fn
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(9, dtype=torch.float64, generator=generator).requires_grad_()
    labels = t([1.0, 0.0, NAN, 0.7, 1.0, 1.0, 0.0, 0.2, NAN])  # hard, soft and masked steps
    counts = torch.tensor([3, 2, 1, 3])
    assert torch.autograd.gradcheck(lambda x: fn(x, labels, counts), (logits,))
