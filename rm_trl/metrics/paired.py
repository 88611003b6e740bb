"""Paired comparisons: is setting A better than setting B on the *same* items or seeds?

Overlapping marginal intervals say little when two models are scored on the same test items: their errors are
correlated, so the difference is far better determined than either number. These functions compare the
difference directly: over seeds (a t interval of per-seed differences), over test items (a paired bootstrap,
resampling items or whole groups such as prompts), and for accuracies McNemar's exact test on the discordant
items. `docs/loss_analysis.md` and the loss lab (`rm_trl.lab`) report them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class Interval:
    """Mean of `n` values with a two-sided confidence interval."""

    mean: float
    low: float
    high: float
    n: int


@dataclass(frozen=True)
class Difference:
    """An estimated difference A - B with its confidence interval and a two-sided p value (H0: no difference)."""

    estimate: float
    low: float
    high: float
    p_value: float
    n: int

    @property
    def excludes_zero(self) -> bool:
        """True when the interval lies entirely on one side of zero."""
        return bool(self.low > 0 or self.high < 0)


def _finite(values: Sequence[float]) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    return array[np.isfinite(array)]


def seed_interval(values: Sequence[float], confidence: float = 0.95) -> Interval:
    """Student-t interval of the mean of one metric over seeds (NaN seeds are left out, and `n` says so)."""
    array = _finite(values)
    n = len(array)
    if n == 0:
        return Interval(float("nan"), float("nan"), float("nan"), 0)
    mean = float(array.mean())
    if n == 1:
        return Interval(mean, float("nan"), float("nan"), 1)
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1) * array.std(ddof=1) / np.sqrt(n))
    return Interval(mean, mean - half, mean + half, n)


def paired_seed_difference(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> Difference:
    """Mean of per-seed differences `a[i] - b[i]` (seed i ran both settings), t interval and paired t-test p."""
    diffs = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    if len(np.asarray(a)) != len(np.asarray(b)):
        raise ValueError(f"paired values need equal lengths, got {len(a)} and {len(b)}")
    diffs = diffs[np.isfinite(diffs)]
    interval = seed_interval(diffs, confidence)
    if interval.n < 2:
        return Difference(interval.mean, float("nan"), float("nan"), float("nan"), interval.n)
    if np.allclose(diffs, diffs[0]):  # zero variance: the t statistic is undefined
        p_value = 1.0 if diffs[0] == 0 else 0.0
        return Difference(interval.mean, float(diffs[0]), float(diffs[0]), p_value, interval.n)
    p_value = float(stats.ttest_1samp(diffs, 0.0).pvalue)
    return Difference(interval.mean, interval.low, interval.high, p_value, interval.n)


def paired_bootstrap(
    statistic: Callable[[np.ndarray], float],
    n: int,
    *,
    groups: Sequence | None = None,
    resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Difference:
    """Percentile bootstrap of `statistic(indices)` = metric_A - metric_B on the same resampled test items.

    With `groups` (one label per item, e.g. the prompt), whole groups are resampled, so items that share a prompt
    stay together. The p value is the two-sided bootstrap tail: twice the smaller share of resampled differences
    on either side of zero (at least 1 / resamples).
    """
    rng = np.random.default_rng(seed)
    if groups is None:
        clusters = [np.array([i]) for i in range(n)]
    else:
        if len(groups) != n:
            raise ValueError(f"groups has {len(groups)} labels for {n} items")
        _, inverse = np.unique(np.asarray(groups, dtype=object).astype(str), return_inverse=True)
        clusters = [np.flatnonzero(inverse == g) for g in range(inverse.max() + 1)] if n else []
    estimate = float(statistic(np.arange(n)))
    if not clusters:
        return Difference(estimate, float("nan"), float("nan"), float("nan"), 0)
    values = []
    for _ in range(resamples):
        picked = rng.integers(0, len(clusters), len(clusters))
        value = statistic(np.concatenate([clusters[c] for c in picked]))
        if np.isfinite(value):
            values.append(value)
    if not values:
        return Difference(estimate, float("nan"), float("nan"), float("nan"), n)
    values = np.asarray(values)
    tail = (1 - confidence) / 2
    low, high = np.quantile(values, [tail, 1 - tail])
    below, above = np.mean(values < 0), np.mean(values > 0)
    ties = np.mean(values == 0)
    p_value = min(1.0, 2 * min(below + ties / 2, above + ties / 2))
    return Difference(estimate, float(low), float(high), max(p_value, 1 / len(values)), n)


def paired_mean_difference(a: Sequence[float], b: Sequence[float], **kwargs) -> Difference:
    """`paired_bootstrap` of mean(a) - mean(b) for per-item values (e.g. 0/1 correctness of each test pair)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired values need equal shapes, got {a.shape} and {b.shape}")
    return paired_bootstrap(lambda idx: float(a[idx].mean() - b[idx].mean()), len(a), **kwargs)


def mcnemar(a_correct: Sequence[bool], b_correct: Sequence[bool]) -> dict[str, float]:
    """McNemar's exact test: do A and B differ in accuracy on the same items?

    Only discordant items count: `a_only` (A right, B wrong) and `b_only`. Under H0 each discordant item is a fair
    coin, so the p value is the two-sided binomial tail (1.0 when there are no discordant items).
    """
    a, b = np.asarray(a_correct, dtype=bool), np.asarray(b_correct, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"paired values need equal shapes, got {a.shape} and {b.shape}")
    a_only, b_only = int(np.sum(a & ~b)), int(np.sum(~a & b))
    discordant = a_only + b_only
    p_value = 1.0 if discordant == 0 else float(stats.binomtest(a_only, discordant, 0.5).pvalue)
    return {"a_only": a_only, "b_only": b_only, "p_value": p_value}
