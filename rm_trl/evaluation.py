"""Evaluate a reward model on pairwise, rated or ranked data, in the field's terms.

- pairwise: accuracy (a tie counts as wrong, as in RewardBench), mean margin, calibration of
  `P(chosen > rejected) = sigmoid(r_c - r_r)` (expected calibration error + reliability curve), length bias;
- rated: Pearson, Spearman, Kendall; MAE and RMSE after an affine least-squares fit of the rewards to the score
  scale on the evaluated rows (any reward model has its own scale); pairwise accuracy over same-prompt pairs whose
  scores differ; length bias;
- ranked: pairwise accuracy over all untied pairs, top-1 accuracy, NDCG, Kendall tau per list; length bias;
- per-subset scores when the data has a subset/category column, with the row-weighted total and the subset mean;
- 95% bootstrap confidence intervals (resampling prompts / rows) for the headline metrics.

Metrics come from scipy and scikit-learn where they exist there; `evaluate`'s metric modules are fetched from
the Hub at run time, which an offline evaluation cannot do.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from datasets import Dataset

from .data.converters import detect_format
from .data.formats import PAIRWISE, RANKED, RATED
from .data.pipeline import RESPONSE_IDS
from .scoring import RewardScorer, ScoredData

SUBSET_COLUMNS = ("subset", "category", "source", "domain", "lang_pair")
BOOTSTRAP_SAMPLES = 1000
CALIBRATION_BINS = 10


@dataclass
class EvalResult:
    """Everything an evaluation produced: metrics, per-subset metrics, and the arrays the plots need."""

    kind: str
    metrics: dict[str, float]
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)
    subsets: dict[str, dict[str, float]] = field(default_factory=dict)
    curves: dict[str, Any] = field(default_factory=dict)
    report: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "metrics": self.metrics,
            "confidence_intervals_95": {k: list(v) for k, v in self.intervals.items()},
            "subsets": self.subsets,
            "data_report": self.report,
        }


# ----- metric functions on arrays -----------------------------------------------------------------------------------
def pairwise_accuracy(chosen: np.ndarray, rejected: np.ndarray) -> float:
    return float(np.mean(np.asarray(chosen) > np.asarray(rejected))) if len(chosen) else float("nan")


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


def correlation(x: Sequence[float], y: Sequence[float], kind: str) -> float:
    from scipy import stats

    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if len(x) < 2 or np.std(x) == 0 or np.std(y) == 0:
        return float("nan")
    fn = {"pearson": stats.pearsonr, "spearman": stats.spearmanr, "kendall": stats.kendalltau}[kind]
    return float(fn(x, y).statistic)


def affine_fit_errors(rewards: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """MAE / RMSE of `a * reward + b` fitted to the scores by least squares on these rows."""
    from sklearn.metrics import mean_absolute_error, mean_squared_error

    design = np.stack([rewards, np.ones_like(rewards)], axis=1)
    (a, b), *_ = np.linalg.lstsq(design, scores, rcond=None)
    fitted = a * rewards + b
    return {
        "mae": float(mean_absolute_error(scores, fitted)),
        "rmse": float(np.sqrt(mean_squared_error(scores, fitted))),
        "fit_slope": float(a),
        "fit_intercept": float(b),
    }


def ranked_group_metrics(groups: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, float]:
    """Pairwise accuracy over all untied pairs, top-1 accuracy, NDCG and mean Kendall tau over lists."""
    from sklearn.metrics import ndcg_score

    correct = total = top1 = 0
    ndcgs, taus = [], []
    for rewards, ranks in groups:
        better = ranks[:, None] < ranks[None, :]
        correct += int(np.sum(better & (rewards[:, None] > rewards[None, :])))
        total += int(np.sum(better))
        top1 += int(ranks[np.argmax(rewards)] == ranks.min())
        relevance = (ranks.max() - ranks)[None, :].astype(np.float64)
        ndcgs.append(float(ndcg_score(relevance, rewards[None, :])))
        tau = correlation(rewards, -ranks, "kendall")
        if np.isfinite(tau):
            taus.append(tau)
    n = max(len(groups), 1)
    return {
        "pair_accuracy": correct / max(total, 1),
        "top1_accuracy": top1 / n,
        "ndcg": float(np.mean(ndcgs)) if ndcgs else float("nan"),
        "kendall_tau": float(np.mean(taus)) if taus else float("nan"),
        "pairs": float(total),
        "lists": float(len(groups)),
    }


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


# ----- evaluation of scored data ------------------------------------------------------------------------------------
def _subset_column(dataset: Dataset, requested: str | None) -> str | None:
    if requested:
        if requested not in dataset.column_names:
            raise ValueError(f"subset column {requested!r} not in the data ({dataset.column_names})")
        return requested
    return next((c for c in SUBSET_COLUMNS if c in dataset.column_names), None)


def evaluate_scored(
    scored: ScoredData,
    raw: Dataset,
    kind: str,
    *,
    subset_column: str | None = None,
    score_column: str = "score",
    bootstrap_samples: int = BOOTSTRAP_SAMPLES,
) -> EvalResult:
    """Compute the metrics of `kind` from scored rows; `raw` is the source dataset (for subsets and scores)."""
    rows = np.asarray(scored.rows)
    rewards = scored.scalar_rewards()
    lengths = [np.array([len(r) for r in response_ids]) for response_ids in scored.prepared.dataset[RESPONSE_IDS]]
    subset_col = _subset_column(raw, subset_column)
    subsets = np.asarray(raw[subset_col])[rows] if subset_col else None

    if kind == PAIRWISE:
        chosen = np.array([r[0] for r in rewards])
        rejected = np.array([r[1] for r in rewards])
        result = _evaluate_pairwise(chosen, rejected, lengths, bootstrap_samples)
        if subsets is not None:
            result.subsets = _per_subset(
                subsets, lambda idx: {"accuracy": pairwise_accuracy(chosen[idx], rejected[idx])}
            )
    elif kind == RATED:
        values = np.array([r[0] for r in rewards])
        gold = np.asarray(raw[score_column], np.float64)[rows]
        prompts = np.asarray([str(p) for p in raw["prompt"]])[rows] if "prompt" in raw.column_names else None
        result = _evaluate_rated(values, gold, prompts, np.concatenate(lengths), bootstrap_samples)
        if subsets is not None:
            result.subsets = _per_subset(
                subsets, lambda idx: {"spearman": correlation(values[idx], gold[idx], "spearman")}
            )
    elif kind == RANKED:
        ranks = [np.asarray(raw[int(row)]["ranks"], np.float64) for row in rows]
        groups = list(zip(rewards, ranks))
        result = _evaluate_ranked(groups, lengths, bootstrap_samples)
        if subsets is not None:
            result.subsets = _per_subset(
                subsets, lambda idx: {"pair_accuracy": ranked_group_metrics([groups[i] for i in idx])["pair_accuracy"]}
            )
    else:
        raise ValueError(f"unknown data kind {kind!r}")
    if result.subsets:
        headline = next(iter(next(iter(result.subsets.values()))))
        values_by_subset = [s[headline] for s in result.subsets.values() if np.isfinite(s[headline])]
        result.metrics[f"subset_mean_{headline}"] = (
            float(np.mean(values_by_subset)) if values_by_subset else float("nan")
        )
    result.report = scored.prepared.report.to_dict()
    return result


def _per_subset(subsets: np.ndarray, compute: Callable[[np.ndarray], dict[str, float]]) -> dict[str, dict[str, float]]:
    out = {}
    for name in sorted(set(subsets.tolist()), key=str):
        idx = np.flatnonzero(subsets == name)
        out[str(name)] = {**compute(idx), "count": float(len(idx))}
    return out


def _length_bias(rewards: np.ndarray, lengths: np.ndarray) -> dict[str, float]:
    return {
        "length_reward_pearson": correlation(rewards, lengths, "pearson"),
        "length_reward_spearman": correlation(rewards, lengths, "spearman"),
    }


def _evaluate_pairwise(chosen, rejected, lengths, samples) -> EvalResult:
    chosen_len = np.array([length[0] for length in lengths])
    rejected_len = np.array([length[1] for length in lengths])
    calib = calibration(chosen, rejected)
    metrics = {
        "accuracy": pairwise_accuracy(chosen, rejected),
        "ties": float(np.mean(chosen == rejected)),
        "margin": float(np.mean(chosen - rejected)),
        "reward_mean": float(np.mean(np.concatenate([chosen, rejected]))),
        "reward_std": float(np.std(np.concatenate([chosen, rejected]))),
        "ece": calib["ece"],
        "pairs": float(len(chosen)),
    }
    metrics.update(_length_bias(np.concatenate([chosen, rejected]), np.concatenate([chosen_len, rejected_len])))
    for name, members in (("chosen_longer", chosen_len > rejected_len), ("chosen_shorter", chosen_len < rejected_len)):
        metrics[f"accuracy_{name}"] = pairwise_accuracy(chosen[members], rejected[members])
        metrics[f"pairs_{name}"] = float(members.sum())
    intervals = {
        "accuracy": bootstrap_interval(len(chosen), lambda i: pairwise_accuracy(chosen[i], rejected[i]), samples)
    }
    curves = {
        "chosen": chosen,
        "rejected": rejected,
        "reliability": calib["curve"],
        "lengths": np.concatenate([chosen_len, rejected_len]),
        "rewards": np.concatenate([chosen, rejected]),
    }
    return EvalResult(PAIRWISE, metrics, intervals, curves=curves)


def _same_prompt_pairs(prompts: np.ndarray | None, gold: np.ndarray) -> list[tuple[int, int]]:
    if prompts is None:
        return []
    by_prompt: dict[str, list[int]] = {}
    for i, p in enumerate(prompts):
        by_prompt.setdefault(p, []).append(i)
    return [(i, j) for members in by_prompt.values() for i in members for j in members if gold[i] > gold[j]]


def _evaluate_rated(values, gold, prompts, lengths, samples) -> EvalResult:
    metrics = {
        "pearson": correlation(values, gold, "pearson"),
        "spearman": correlation(values, gold, "spearman"),
        "kendall": correlation(values, gold, "kendall"),
        "responses": float(len(values)),
    }
    metrics.update(affine_fit_errors(values, gold))
    pairs = _same_prompt_pairs(prompts, gold)
    if pairs:
        better, worse = np.array(pairs).T
        metrics["pair_accuracy"] = pairwise_accuracy(values[better], values[worse])
        metrics["pairs"] = float(len(pairs))
    metrics.update(_length_bias(values, lengths))
    intervals = {
        "spearman": bootstrap_interval(len(values), lambda i: correlation(values[i], gold[i], "spearman"), samples)
    }
    curves = {"predicted": values, "gold": gold, "rewards": values, "lengths": lengths}
    return EvalResult(RATED, metrics, intervals, curves=curves)


def _evaluate_ranked(groups, lengths, samples) -> EvalResult:
    metrics = ranked_group_metrics(groups)
    all_rewards = np.concatenate([g[0] for g in groups])
    metrics.update(_length_bias(all_rewards, np.concatenate(lengths)))
    intervals = {
        "pair_accuracy": bootstrap_interval(
            len(groups), lambda i: ranked_group_metrics([groups[j] for j in i])["pair_accuracy"], samples
        )
    }
    best = np.concatenate([g[0][g[1] == g[1].min()] for g in groups])
    others = np.concatenate([g[0][g[1] != g[1].min()] for g in groups])
    curves = {"chosen": best, "rejected": others, "rewards": all_rewards, "lengths": np.concatenate(lengths)}
    return EvalResult(RANKED, metrics, intervals, curves=curves)


def evaluate_dataset(
    scorer: RewardScorer,
    dataset: Dataset,
    *,
    kind: str | None = None,
    subset_column: str | None = None,
    score_column: str = "score",
    progress: bool = False,
    bootstrap_samples: int = BOOTSTRAP_SAMPLES,
    invalid_rows: str = "error",
) -> EvalResult:
    """Score `dataset` with `scorer` and evaluate it (the format is detected from the columns by default)."""
    kind = kind or detect_format(dataset.column_names)
    options: dict[str, Any] = {"invalid_rows": invalid_rows}
    if kind == RATED:
        options["score_columns"] = (score_column,)
    scored = scorer.score(dataset, kind=kind, progress=progress, **options)
    return evaluate_scored(
        scored,
        dataset,
        kind,
        subset_column=subset_column,
        score_column=score_column,
        bootstrap_samples=bootstrap_samples,
    )


__all__ = [
    "EvalResult",
    "affine_fit_errors",
    "calibration",
    "evaluate_dataset",
    "evaluate_scored",
    "pairwise_accuracy",
    "ranked_group_metrics",
]
