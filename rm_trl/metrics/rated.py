"""Metrics of rated responses: correlations with the gold scores for training logs and evaluation alike, errors in
the score scale, binary-label accuracy, and what only an evaluation reports (errors after an affine fit,
same-prompt pair accuracy and calibration, length bias)."""

from __future__ import annotations

import numpy as np

from .calibration import calibration_metrics
from .common import Evaluation, correlation, correlations, length_bias
from .pairwise import pairwise_accuracy


def rated_metrics(predictions: np.ndarray, targets: np.ndarray, names: list[str]) -> dict[str, float]:
    """MAE, RMSE, Pearson, Spearman and Kendall per attribute; `[rows, A]` arrays in the score scale, NaN = missing.

    With one attribute the keys have no suffix; with several each key ends with `_<attribute>`.
    """
    out: dict[str, float] = {}
    predictions = np.asarray(predictions, np.float64).reshape(len(predictions), -1)
    targets = np.asarray(targets, np.float64).reshape(len(targets), -1)
    for a, name in enumerate(names):
        present = ~np.isnan(targets[:, a])
        p, t = predictions[present, a], targets[present, a]
        suffix = "" if len(names) == 1 else f"_{name}"
        out[f"mae{suffix}"] = float(np.mean(np.abs(p - t))) if len(t) else float("nan")
        out[f"rmse{suffix}"] = float(np.sqrt(np.mean((p - t) ** 2))) if len(t) else float("nan")
        out.update(correlations(p, t, suffix))
    return out


def binary_metrics(logits: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Accuracy of `logit > 0` against 0/1 labels, and the mean binary cross-entropy."""
    logits = np.asarray(logits, np.float64).ravel()
    labels = np.asarray(labels, np.float64).ravel()
    present = ~np.isnan(labels)
    z, y = logits[present], labels[present]
    bce = np.mean(np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z))))
    return {"accuracy": float(np.mean((z > 0) == (y > 0.5))), "bce": float(bce)}


def affine_fit_errors(rewards: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """MAE / RMSE of `a * reward + b` fitted to the scores by least squares on these rows (any reward model has its
    own scale, so raw errors would measure the scale, not the model)."""
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


def same_prompt_pairs(prompts: np.ndarray | None, gold: np.ndarray) -> list[tuple[int, int]]:
    """(better, worse) index pairs of responses to the same prompt whose gold scores differ."""
    if prompts is None:
        return []
    by_prompt: dict[str, list[int]] = {}
    for i, p in enumerate(prompts):
        by_prompt.setdefault(p, []).append(i)
    return [(i, j) for members in by_prompt.values() for i in members for j in members if gold[i] > gold[j]]


def same_prompt_margins(values: np.ndarray, gold: np.ndarray, prompts: np.ndarray | None) -> np.ndarray:
    """`reward(better) - reward(worse)` over the `same_prompt_pairs`: the preference pairs rated responses give
    (responses to one prompt whose gold scores differ), for calibration."""
    pairs = same_prompt_pairs(prompts, np.asarray(gold, np.float64))
    if not pairs:
        return np.zeros(0)
    better, worse = np.array(pairs).T
    values = np.asarray(values, np.float64)
    return values[better] - values[worse]


def evaluate_ratings(
    values: np.ndarray, gold: np.ndarray, prompts: np.ndarray | None, lengths: np.ndarray
) -> Evaluation:
    """Everything an evaluation reports on rated responses: `values` are rewards, `gold` the scores, `prompts` the
    prompt of each response (None: no same-prompt pairs), `lengths` the responses' lengths in tokens."""
    metrics = {**correlations(values, gold), "responses": float(len(values))}
    metrics.update(affine_fit_errors(values, gold))
    pairs = same_prompt_pairs(prompts, gold)
    curves = {"predicted": values, "gold": gold, "rewards": values, "lengths": lengths}
    if pairs:
        better, worse = np.array(pairs).T
        metrics["pair_accuracy"] = pairwise_accuracy(values[better], values[worse])
        metrics["pairs"] = float(len(pairs))
        curves["preference_margins"] = np.asarray(values[better] - values[worse], np.float64)
        metrics.update(calibration_metrics(curves["preference_margins"]))
    metrics.update(length_bias(values, lengths))
    return Evaluation(metrics, lambda i: correlation(values[i], gold[i], "spearman"), len(values), curves)
