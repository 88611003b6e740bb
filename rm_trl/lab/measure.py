"""What the lab measures: a model's rewards on fresh test responses against the hidden truth (pure numpy).

- `spearman`: rank correlation of rewards with r*.
- `pair_accuracy`: over every pair of test responses with different r*, how often the reward orders them as r*
  does (a tie in reward counts one half).
- `prob_mae` / `prob_ece`: calibration of `P(a > b) = sigmoid(r_a - r_b)` against the true preference probability
  of the annotator model (`annotators.choice_probability`) on random test pairs: the mean absolute error, and the
  expected calibration error over 10 bins of the predicted probability (|mean predicted - mean true| per bin,
  weighted by the bin's share). Only meaningful for losses whose reward difference is a log-odds.
- `length_corr`: rank correlation of rewards with response length (words), and `filler_corr` with the number of
  filler words. Fillers carry no reward and lengths are independent of r* in the test set, so anything but ~0 is
  reliance on length (`filler_corr` isolates the part a spurious training pool can teach).
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit
from scipy.stats import spearmanr

CALIBRATION_PAIRS = 4000
CALIBRATION_BINS = 10


def pair_accuracy(predicted: np.ndarray, truth: np.ndarray) -> float:
    """Fraction of untied true pairs the predictions order correctly (prediction ties count 1/2)."""
    true_sign = np.sign(truth[:, None] - truth[None, :])
    pred_sign = np.sign(predicted[:, None] - predicted[None, :])
    upper = np.triu(np.ones_like(true_sign, dtype=bool), k=1) & (true_sign != 0)
    agree = np.where(pred_sign == 0, 0.5, (pred_sign == true_sign).astype(float))
    return float(agree[upper].mean())


def calibration_pairs(n: int, rng: np.random.Generator, count: int = CALIBRATION_PAIRS) -> tuple[np.ndarray, ...]:
    """Random distinct index pairs (a, b) among `n` test responses."""
    a = rng.integers(0, n, size=count)
    b = (a + rng.integers(1, n, size=count)) % n
    return a, b


def calibration(predicted_prob: np.ndarray, true_prob: np.ndarray) -> dict[str, float]:
    """Mean absolute error and binned ECE of predicted preference probabilities against the true ones."""
    bins = np.minimum((predicted_prob * CALIBRATION_BINS).astype(int), CALIBRATION_BINS - 1)
    ece = 0.0
    for k in np.unique(bins):
        inside = bins == k
        ece += inside.mean() * abs(predicted_prob[inside].mean() - true_prob[inside].mean())
    return {"prob_mae": float(np.abs(predicted_prob - true_prob).mean()), "prob_ece": float(ece)}


def _rank_corr(x: np.ndarray, y: np.ndarray) -> float:
    return float(spearmanr(x, y)[0]) if np.ptp(x) and np.ptp(y) else float("nan")


def measure(
    predicted: np.ndarray,
    truth: np.ndarray,
    length: np.ndarray,
    fillers: np.ndarray,
    true_prob: np.ndarray,
    pair_index: tuple[np.ndarray, np.ndarray],
) -> dict[str, float]:
    """Every lab metric of one model's test rewards (`true_prob[i]`: true P(a_i > b_i) for `pair_index`)."""
    a, b = pair_index
    return {
        "spearman": _rank_corr(predicted, truth),
        "pair_accuracy": pair_accuracy(predicted, truth),
        **calibration(expit(predicted[a] - predicted[b]), true_prob),
        "length_corr": _rank_corr(predicted, length),
        "filler_corr": _rank_corr(predicted, fillers),
    }
