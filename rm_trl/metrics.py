"""Metrics computed from rewards, shared by training logs and evaluation."""

from __future__ import annotations

import numpy as np


def pairwise_metrics(chosen: np.ndarray, rejected: np.ndarray) -> dict[str, float]:
    """Pairwise accuracy (a tie counts as wrong, as in RewardBench), mean margin and reward statistics."""
    chosen = np.asarray(chosen, dtype=np.float64)
    rejected = np.asarray(rejected, dtype=np.float64)
    margin = chosen - rejected
    both = np.concatenate([chosen, rejected])
    return {
        "accuracy": float(np.mean(margin > 0)),
        "ties": float(np.mean(margin == 0)),
        "margin": float(np.mean(margin)),
        "reward_mean": float(np.mean(both)),
        "reward_std": float(np.std(both)),
        "reward_chosen": float(np.mean(chosen)),
        "reward_rejected": float(np.mean(rejected)),
    }
