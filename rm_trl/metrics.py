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


def ranked_metrics(rewards: np.ndarray, ranks: np.ndarray) -> dict[str, float]:
    """Metrics of K-wise rankings; `rewards`, `ranks` are `[rows, K]`, padding marked by a negative rank.

    - `pair_accuracy`: over all untied pairs of all rows, the better-ranked response has the higher reward
      (a reward tie counts as wrong);
    - `top1_accuracy`: the highest reward goes to one of the best-ranked responses;
    - `kendall_tau`: Kendall's tau-b between rewards and (reversed) ranks, averaged over rows.
    """
    from scipy.stats import kendalltau

    correct = total = top1 = 0
    taus = []
    for row_rewards, row_ranks in zip(np.asarray(rewards, np.float64), np.asarray(ranks, np.float64)):
        valid = row_ranks >= 0
        r, k = row_rewards[valid], row_ranks[valid]
        better = k[:, None] < k[None, :]
        correct += int(np.sum(better & (r[:, None] > r[None, :])))
        total += int(np.sum(better))
        top1 += int(k[np.argmax(r)] == k.min())
        if len(set(k.tolist())) > 1:
            tau = kendalltau(r, -k).statistic
            if np.isfinite(tau):
                taus.append(tau)
    return {
        "pair_accuracy": correct / max(total, 1),
        "top1_accuracy": top1 / max(len(rewards), 1),
        "kendall_tau": float(np.mean(taus)) if taus else float("nan"),
        "pairs": float(total),
    }


def rated_metrics(predictions: np.ndarray, targets: np.ndarray, names: list[str]) -> dict[str, float]:
    """MAE, RMSE, Pearson, Spearman and Kendall per attribute; `[rows, A]` arrays in the score scale, NaN = missing.

    With one attribute the keys have no suffix; with several each key ends with `_<attribute>`.
    """
    from scipy.stats import kendalltau, pearsonr, spearmanr

    out: dict[str, float] = {}
    predictions = np.asarray(predictions, np.float64).reshape(len(predictions), -1)
    targets = np.asarray(targets, np.float64).reshape(len(targets), -1)
    for a, name in enumerate(names):
        present = ~np.isnan(targets[:, a])
        p, t = predictions[present, a], targets[present, a]
        suffix = "" if len(names) == 1 else f"_{name}"
        out[f"mae{suffix}"] = float(np.mean(np.abs(p - t))) if len(t) else float("nan")
        out[f"rmse{suffix}"] = float(np.sqrt(np.mean((p - t) ** 2))) if len(t) else float("nan")
        varied = len(t) > 1 and np.std(t) > 0 and np.std(p) > 0
        out[f"pearson{suffix}"] = float(pearsonr(p, t).statistic) if varied else float("nan")
        out[f"spearman{suffix}"] = float(spearmanr(p, t).statistic) if varied else float("nan")
        out[f"kendall{suffix}"] = float(kendalltau(p, t).statistic) if varied else float("nan")
    return out


def binary_metrics(logits: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Accuracy of `logit > 0` against 0/1 labels, and the mean binary cross-entropy."""
    logits = np.asarray(logits, np.float64).ravel()
    labels = np.asarray(labels, np.float64).ravel()
    present = ~np.isnan(labels)
    z, y = logits[present], labels[present]
    bce = np.mean(np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z))))
    return {"accuracy": float(np.mean((z > 0) == (y > 0.5))), "bce": float(bce)}
