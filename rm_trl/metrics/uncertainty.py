"""Does a reward model know when it is wrong, and how much does it lean on length? (issue #17, item 4)

- `uncertainty_metrics`: the uncertainty-error AUROC (the probability that a pair the model gets wrong is more
  uncertain than one it gets right; 0.5 = uncertainty says nothing) and selective accuracy (accuracy on the pairs
  kept when the model abstains on the most uncertain ones, at several coverages).
- `length_binned_accuracy`: accuracy within quantile bins of the length difference (chosen - rejected, tokens), and
  the length-balanced accuracy (mean of the accuracies where the chosen response is longer and where it is
  shorter), which a pure length rule cannot push above 0.5.
Plain numpy, nothing from the rest of rm-trl.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .common import auroc

COVERAGES = (1.0, 0.9, 0.8, 0.7, 0.5)
LENGTH_BINS = 5


def selective_accuracy(correct: np.ndarray, uncertainty: np.ndarray, coverage: float) -> float:
    """Accuracy on the `coverage` fraction of items with the lowest uncertainty (ties broken by item order)."""
    correct = np.asarray(correct, np.float64)
    keep = max(1, int(round(coverage * len(correct))))
    order = np.argsort(np.asarray(uncertainty, np.float64), kind="stable")[:keep]
    return float(correct[order].mean()) if len(correct) else float("nan")


def uncertainty_metrics(correct: np.ndarray, uncertainty: np.ndarray) -> dict[str, float]:
    """`uncertainty_error_auroc`, `selective_accuracy_<coverage %>` and the mean uncertainty of right and wrong
    items, from per-item correctness and uncertainty (e.g. `rm_trl.ensemble.pair_uncertainty`)."""
    correct, uncertainty = np.asarray(correct, bool), np.asarray(uncertainty, np.float64)
    metrics = {
        "uncertainty_error_auroc": auroc(uncertainty, ~correct),
        "uncertainty_mean_correct": float(uncertainty[correct].mean()) if correct.any() else float("nan"),
        "uncertainty_mean_wrong": float(uncertainty[~correct].mean()) if (~correct).any() else float("nan"),
    }
    for coverage in COVERAGES:
        metrics[f"selective_accuracy_{round(coverage * 100)}"] = selective_accuracy(correct, uncertainty, coverage)
    return metrics


def length_binned_accuracy(
    chosen: np.ndarray, rejected: np.ndarray, chosen_len: np.ndarray, rejected_len: np.ndarray, bins: int = LENGTH_BINS
) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """(`accuracy_length_balanced` metric, per-bin rows `{low, high, pairs, accuracy}`) over quantile bins of the
    length difference chosen - rejected in tokens."""
    chosen, rejected = np.asarray(chosen, np.float64), np.asarray(rejected, np.float64)
    difference = np.asarray(chosen_len, np.float64) - np.asarray(rejected_len, np.float64)
    correct = chosen > rejected
    longer, shorter = difference > 0, difference < 0
    balanced = float("nan")
    if longer.any() and shorter.any():
        balanced = float((correct[longer].mean() + correct[shorter].mean()) / 2)
    rows: list[dict[str, Any]] = []
    if len(difference):
        edges = np.unique(np.quantile(difference, np.linspace(0, 1, bins + 1)))
        which = np.clip(np.searchsorted(edges, difference, side="right") - 1, 0, max(len(edges) - 2, 0))
        for b in range(max(len(edges) - 1, 1)):
            members = which == b
            if members.any():
                rows.append(
                    {
                        "low": float(difference[members].min()),
                        "high": float(difference[members].max()),
                        "pairs": int(members.sum()),
                        "accuracy": float(correct[members].mean()),
                    }
                )
    return {"accuracy_length_balanced": balanced}, rows
