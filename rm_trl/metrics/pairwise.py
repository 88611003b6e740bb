"""Metrics of pairs (chosen, rejected): accuracy, margin and reward statistics for training logs and evaluation
alike, plus what only an evaluation reports (calibration, length bias, accuracy by which response is longer)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .common import Evaluation, length_bias

CALIBRATION_BINS = 10


def pairwise_accuracy(chosen: np.ndarray, rejected: np.ndarray) -> float:
    """Share of pairs whose chosen response gets the higher reward; a tie counts as wrong (as in RewardBench)."""
    return float(np.mean(np.asarray(chosen) > np.asarray(rejected))) if len(chosen) else float("nan")


def pair_statistics(chosen: np.ndarray, rejected: np.ndarray) -> dict[str, float]:
    """Accuracy, ties, mean margin and reward statistics, computed in the arrays' own dtype (evaluation passes the
    model's float32 rewards, training logs float64: each keeps the numbers it always reported)."""
    both = np.concatenate([chosen, rejected])
    return {
        "accuracy": pairwise_accuracy(chosen, rejected),
        "ties": float(np.mean(chosen == rejected)),
        "margin": float(np.mean(chosen - rejected)),
        "reward_mean": float(np.mean(both)),
        "reward_std": float(np.std(both)),
    }


def pairwise_metrics(chosen: np.ndarray, rejected: np.ndarray) -> dict[str, float]:
    """Training-log metrics of pairs: `pair_statistics` in float64, plus the mean reward of each side."""
    chosen = np.asarray(chosen, dtype=np.float64)
    rejected = np.asarray(rejected, dtype=np.float64)
    return {
        **pair_statistics(chosen, rejected),
        "reward_chosen": float(np.mean(chosen)),
        "reward_rejected": float(np.mean(rejected)),
    }


def calibration(chosen: np.ndarray, rejected: np.ndarray, bins: int = CALIBRATION_BINS) -> dict[str, Any]:
    """Calibration of the Bradley-Terry preference probability `sigmoid(r_c - r_r)`.

    Each pair is a binary prediction "the first response is preferred" with confidence `max(p, 1 - p)`; it is
    right when `p > 0.5`. ECE is the count-weighted gap between mean confidence and accuracy over confidence bins
    in [0.5, 1].
    """
    p = 1.0 / (1.0 + np.exp(-(np.asarray(chosen, np.float64) - np.asarray(rejected, np.float64))))
    confidence = np.maximum(p, 1.0 - p)
    correct = (p > 0.5).astype(np.float64)
    edges = np.linspace(0.5, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    curve, ece = [], 0.0
    for b in range(bins):
        members = which == b
        if not members.any():
            continue
        conf, acc = float(confidence[members].mean()), float(correct[members].mean())
        ece += members.mean() * abs(acc - conf)
        curve.append(
            {
                "bin": [float(edges[b]), float(edges[b + 1])],
                "confidence": conf,
                "accuracy": acc,
                "count": int(members.sum()),
            }
        )
    return {"ece": float(ece), "curve": curve}


def evaluate_pairs(
    chosen: np.ndarray, rejected: np.ndarray, chosen_len: np.ndarray, rejected_len: np.ndarray
) -> Evaluation:
    """Everything an evaluation reports on pairs; `*_len` are the responses' lengths in tokens."""
    calib = calibration(chosen, rejected)
    metrics = {**pair_statistics(chosen, rejected), "ece": calib["ece"], "pairs": float(len(chosen))}
    rewards, lengths = np.concatenate([chosen, rejected]), np.concatenate([chosen_len, rejected_len])
    metrics.update(length_bias(rewards, lengths))
    for name, members in (("chosen_longer", chosen_len > rejected_len), ("chosen_shorter", chosen_len < rejected_len)):
        metrics[f"accuracy_{name}"] = pairwise_accuracy(chosen[members], rejected[members])
        metrics[f"pairs_{name}"] = float(members.sum())
    curves = {
        "chosen": chosen,
        "rejected": rejected,
        "reliability": calib["curve"],
        "lengths": lengths,
        "rewards": rewards,
    }
    return Evaluation(metrics, lambda i: pairwise_accuracy(chosen[i], rejected[i]), len(chosen), curves)
