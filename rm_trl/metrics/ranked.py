"""Metrics of ranked lists (rank 0 = best, ties share a rank): one pass over the lists gives the numbers of training
logs and evaluation alike (pair accuracy, top-1 accuracy, NDCG, Kendall tau); evaluation adds length bias and the
calibration of the lists' preference pairs, and resamples the per-list counts for its intervals instead of
recomputing every list."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .calibration import calibration_metrics
from .common import Evaluation, correlation, length_bias

RankedList = tuple[np.ndarray, np.ndarray]  # (rewards, ranks) of one list, both [K]


def ndcg(rewards: np.ndarray, ranks: np.ndarray) -> float:
    """NDCG of the order the rewards give, with relevance `max rank - rank`; tied rewards share the discount of
    their positions. The arithmetic of scikit-learn's `ndcg_score` step by step (same values to the last bit),
    without needing scikit-learn in training."""
    relevance = (ranks.max() - ranks).astype(np.float64)
    discount = 1 / (np.log(np.arange(len(relevance)) + 2) / np.log(2))
    discount_cumsum = np.cumsum(discount)
    _, inverse, counts = np.unique(-rewards, return_inverse=True, return_counts=True)
    ranked = np.zeros(len(counts))
    np.add.at(ranked, inverse, relevance)
    ranked /= counts
    groups = np.cumsum(counts) - 1
    discount_sums = np.empty(len(counts))
    discount_sums[0] = discount_cumsum[groups[0]]
    discount_sums[1:] = np.diff(discount_cumsum[groups])
    gain = (ranked * discount_sums).sum()
    ideal_order = relevance[None, np.argsort(relevance)[::-1]]  # [1, K], as scikit-learn lays it out
    ideal = discount.dot(ideal_order.T)[0]
    return float(gain / ideal) if ideal != 0 else 0.0


def list_statistics(groups: Sequence[RankedList]) -> dict[str, np.ndarray]:
    """Per list: correctly ordered and all untied pairs, whether the top reward is a best response, NDCG and Kendall
    tau (NaN where undefined); `ranked_summary` turns any selection of lists into the metrics."""
    stats: dict[str, list] = {"correct": [], "total": [], "top1": [], "ndcg": [], "tau": []}
    for rewards, ranks in groups:
        better = ranks[:, None] < ranks[None, :]
        stats["correct"].append(int(np.sum(better & (rewards[:, None] > rewards[None, :]))))
        stats["total"].append(int(np.sum(better)))
        stats["top1"].append(int(ranks[np.argmax(rewards)] == ranks.min()))
        stats["ndcg"].append(ndcg(rewards, ranks) if len(ranks) > 1 else float("nan"))
        stats["tau"].append(correlation(rewards, -ranks, "kendall"))
    return {
        name: np.asarray(values, np.int64 if name in ("correct", "total", "top1") else np.float64)
        for name, values in stats.items()
    }


def list_pair_accuracy(stats: dict[str, np.ndarray], idx: np.ndarray | slice = slice(None)) -> float:
    """Over all untied pairs of the selected lists, the better-ranked response has the higher reward (a reward tie
    counts as wrong)."""
    return int(stats["correct"][idx].sum()) / max(int(stats["total"][idx].sum()), 1)


def ranked_summary(stats: dict[str, np.ndarray]) -> dict[str, float]:
    """The metrics of the lists `list_statistics` measured: pair and top-1 accuracy, mean NDCG and Kendall tau."""
    ndcgs, taus = stats["ndcg"][np.isfinite(stats["ndcg"])], stats["tau"][np.isfinite(stats["tau"])]
    lists = len(stats["top1"])
    return {
        "pair_accuracy": list_pair_accuracy(stats),
        "top1_accuracy": int(stats["top1"].sum()) / max(lists, 1),
        "ndcg": float(np.mean(ndcgs)) if len(ndcgs) else float("nan"),
        "kendall_tau": float(np.mean(taus)) if len(taus) else float("nan"),
        "pairs": float(stats["total"].sum()),
        "lists": float(lists),
    }


def ranked_group_metrics(groups: Sequence[RankedList]) -> dict[str, float]:
    """Pair accuracy over all untied pairs, top-1 accuracy, NDCG and mean Kendall tau over `(rewards, ranks)` lists."""
    return ranked_summary(list_statistics(groups))


def ranked_metrics(rewards: np.ndarray, ranks: np.ndarray) -> dict[str, float]:
    """`ranked_group_metrics` of padded `[rows, K]` arrays (training logs), padding marked by a negative rank."""
    groups = []
    for row_rewards, row_ranks in zip(np.asarray(rewards, np.float64), np.asarray(ranks, np.float64)):
        valid = row_ranks >= 0
        groups.append((row_rewards[valid], row_ranks[valid]))
    return ranked_group_metrics(groups)


def list_pair_margins(groups: Sequence[RankedList]) -> np.ndarray:
    """`reward(better) - reward(worse)` over every untied pair of every list: the preference pairs a ranked list
    gives (as the `all_pairs` loss and `pair_accuracy` count them), for calibration."""
    margins = [(rewards[:, None] - rewards[None, :])[ranks[:, None] < ranks[None, :]] for rewards, ranks in groups]
    return np.concatenate([np.asarray(m, np.float64) for m in margins]) if margins else np.zeros(0)


def evaluate_rankings(groups: Sequence[RankedList], lengths: Sequence[np.ndarray]) -> Evaluation:
    """Everything an evaluation reports on ranked lists; `lengths` are each list's response lengths in tokens."""
    stats = list_statistics(groups)
    metrics = ranked_summary(stats)
    all_rewards, all_lengths = np.concatenate([g[0] for g in groups]), np.concatenate(lengths)
    metrics.update(length_bias(all_rewards, all_lengths))
    margins = list_pair_margins(groups)
    metrics.update(calibration_metrics(margins))
    best = np.concatenate([g[0][g[1] == g[1].min()] for g in groups])
    others = np.concatenate([g[0][g[1] != g[1].min()] for g in groups])
    curves = {
        "chosen": best,
        "rejected": others,
        "rewards": all_rewards,
        "lengths": all_lengths,
        "preference_margins": margins,
    }
    return Evaluation(metrics, lambda i: list_pair_accuracy(stats, i), len(groups), curves)
