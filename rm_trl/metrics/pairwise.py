"""Metrics of pairs (chosen, rejected): accuracy, margin and reward statistics for training logs and evaluation
alike, plus what only an evaluation reports (calibration before and after temperature scaling, length bias, accuracy
by which response is longer)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .calibration import CALIBRATION_BINS, preference_calibration, temperature_scaling_metrics
from .common import Evaluation, length_bias
from .uncertainty import length_binned_accuracy


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
    """Calibration of the Bradley-Terry preference probability `sigmoid(r_c - r_r)`: expected calibration error,
    Brier score and reliability curve (`rm_trl.metrics.calibration.preference_calibration`)."""
    return preference_calibration(np.asarray(chosen, np.float64) - np.asarray(rejected, np.float64), bins=bins)


def evaluate_pairs(
    chosen: np.ndarray, rejected: np.ndarray, chosen_len: np.ndarray, rejected_len: np.ndarray
) -> Evaluation:
    """Everything an evaluation reports on pairs; `*_len` are the responses' lengths in tokens."""
    margins = np.asarray(chosen, np.float64) - np.asarray(rejected, np.float64)
    calib = preference_calibration(margins)
    metrics = {**pair_statistics(chosen, rejected), "ece": calib["ece"], "pairs": float(len(chosen))}
    metrics.update(brier=calib["brier"], **temperature_scaling_metrics(margins))
    rewards, lengths = np.concatenate([chosen, rejected]), np.concatenate([chosen_len, rejected_len])
    metrics.update(length_bias(rewards, lengths))
    for name, members in (("chosen_longer", chosen_len > rejected_len), ("chosen_shorter", chosen_len < rejected_len)):
        metrics[f"accuracy_{name}"] = pairwise_accuracy(chosen[members], rejected[members])
        metrics[f"pairs_{name}"] = float(members.sum())
    balanced, length_bins = length_binned_accuracy(chosen, rejected, chosen_len, rejected_len)
    metrics.update(balanced)
    curves = {
        "chosen": chosen,
        "rejected": rejected,
        "reliability": calib["curve"],
        "preference_margins": margins,
        "lengths": lengths,
        "rewards": rewards,
        "length_bins": length_bins,
    }
    return Evaluation(metrics, lambda i: pairwise_accuracy(chosen[i], rejected[i]), len(chosen), curves)
