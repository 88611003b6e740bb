"""What the metrics of every format share: correlations, bootstrap intervals, per-subset tables, length bias, and
the `Evaluation` a format's evaluation returns. Plain numpy and scipy, nothing from the rest of rm-trl."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

BOOTSTRAP_SAMPLES = 1000
CORRELATIONS = ("pearson", "spearman", "kendall")


@dataclass
class Evaluation:
    """The numbers a format's evaluation computed from arrays: `metrics`, the `curves` the report plots, and its
    headline metric as a function of which evaluated rows count (`headline(indices)`), so that bootstrap intervals
    and per-subset tables are computed the same way for every format (`rm_trl.evaluation`)."""

    metrics: dict[str, float]
    headline: Callable[[np.ndarray], float]
    rows: int
    curves: dict[str, Any] = field(default_factory=dict)


def correlation(x: Sequence[float], y: Sequence[float], kind: str) -> float:
    """Pearson, Spearman or Kendall (tau-b) correlation; NaN when either side is constant or has < 2 values."""
    from scipy import stats

    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if len(x) < 2 or np.std(x) == 0 or np.std(y) == 0:
        return float("nan")
    fn = {"pearson": stats.pearsonr, "spearman": stats.spearmanr, "kendall": stats.kendalltau}[kind]
    return float(fn(x, y).statistic)


def correlations(predictions: Sequence[float], targets: Sequence[float], suffix: str = "") -> dict[str, float]:
    """`pearson`, `spearman` and `kendall` of predictions against targets, each key ending with `suffix`."""
    return {f"{kind}{suffix}": correlation(predictions, targets, kind) for kind in CORRELATIONS}


def bootstrap_interval(
    n: int, statistic: Callable[[np.ndarray], float], samples: int = BOOTSTRAP_SAMPLES, seed: int = 0
) -> tuple[float, float]:
    """95% percentile bootstrap interval of `statistic(indices)` over `n` resampled units."""
    rng = np.random.default_rng(seed)
    values = [statistic(rng.integers(0, n, n)) for _ in range(samples)]
    values = [v for v in values if np.isfinite(v)]
    if not values:
        return float("nan"), float("nan")
    return float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))


def per_subset(subsets: np.ndarray, compute: Callable[[np.ndarray], dict[str, float]]) -> dict[str, dict[str, float]]:
    """`compute(indices)` for the rows of each subset label (sorted by name), plus the subset's row count."""
    out = {}
    for name in sorted(set(subsets.tolist()), key=str):
        idx = np.flatnonzero(subsets == name)
        out[str(name)] = {**compute(idx), "count": float(len(idx))}
    return out


def length_bias(rewards: np.ndarray, lengths: np.ndarray) -> dict[str, float]:
    """How much the reward follows the response length (in tokens): a reward model's best-known shortcut."""
    return {
        "length_reward_pearson": correlation(rewards, lengths, "pearson"),
        "length_reward_spearman": correlation(rewards, lengths, "spearman"),
    }


def auroc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve of `scores` for the boolean `positive` (Mann-Whitney, ties count half); NaN when
    only one class is present."""
    from scipy.stats import rankdata

    scores, positive = np.asarray(scores, np.float64), np.asarray(positive, bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
