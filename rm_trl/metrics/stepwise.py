"""Step-level (process reward) metrics and the rules that turn a solution's step rewards into one reward.

Pure numpy: the trainers' logs, the evaluation report and the consumers (`RewardFunction`, `rm-trl score`,
`rm-trl serve`) read the same functions. See `docs/process_rewards.md`.

A step is *correct* when its label is >= 0.5 (hard labels 1 / 0, soft labels thresholded) and *predicted correct*
when its probability sigmoid(logit) is >= 0.5; a NaN label is a masked step (not evaluated, still a step of its
solution). The error class (wrong steps) is the positive class of precision / recall.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np

from .common import Evaluation, auroc

STEP_AGGREGATIONS = ("min", "product", "last", "mean")
PADDING_LABEL = -1.0  # per-response predictions: steps past a solution's end carry a negative label (-1, or -100)

Solution = tuple[np.ndarray, np.ndarray]  # (step logits [N], step labels [N], NaN = masked) of one solution


def step_probabilities(logits: np.ndarray) -> np.ndarray:
    """Probability that each step is correct: the sigmoid of its logit (float64, stable for large |logit|)."""
    logits = np.asarray(logits, dtype=np.float64)
    return np.exp(-np.logaddexp(0.0, -logits))


def aggregate_steps(probabilities: np.ndarray, rule: str) -> float:
    """One solution's reward from its step probabilities: `min` (the weakest step), `product` (all steps right,
    as if independent), `last` (the final step) or `mean`."""
    p = np.asarray(probabilities, dtype=np.float64)
    if p.size == 0:
        raise ValueError("a solution needs at least one step to aggregate")
    if rule == "min":
        return float(p.min())
    if rule == "product":
        return float(np.prod(p))
    if rule == "last":
        return float(p[-1])
    if rule == "mean":
        return float(p.mean())
    raise ValueError(f"unknown step aggregation {rule!r}; choose one of {', '.join(STEP_AGGREGATIONS)}")


# ----- step classification ------------------------------------------------------------------------------------------
def _confusion(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """[tp, fp, fn, tn] of the error class over the labelled steps (error = label < 0.5, predicted = logit < 0)."""
    logits, labels = np.asarray(logits, np.float64), np.asarray(labels, np.float64)
    labelled = ~np.isnan(labels)
    wrong, predicted_wrong = labels[labelled] < 0.5, logits[labelled] < 0.0
    return np.array(
        [
            np.sum(wrong & predicted_wrong),
            np.sum(~wrong & predicted_wrong),
            np.sum(wrong & ~predicted_wrong),
            np.sum(~wrong & ~predicted_wrong),
        ],
        dtype=np.int64,
    )


def _f1(tp: float, fp: float, fn: float) -> float:
    return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else float("nan")


def _macro_f1(counts: np.ndarray) -> float:
    """Mean of the error-class and correct-class F1 (a class absent from gold and predictions is left out)."""
    tp, fp, fn, tn = (float(c) for c in counts)
    f1s = [f for f in (_f1(tp, fp, fn), _f1(tn, fn, fp)) if np.isfinite(f)]
    return float(np.mean(f1s)) if f1s else float("nan")


def step_metrics(logits: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Step classification over the labelled steps (flat arrays; NaN label = masked): `step_accuracy`,
    precision / recall / F1 of the error class (`step_error_precision`, `step_error_recall`, `step_error_f1`),
    `step_f1` (macro-F1 of the two classes, the headline), `step_auroc` (probability of correct against the label;
    left out when only one class is labelled) and `steps` (labelled steps counted)."""
    logits, labels = np.asarray(logits, np.float64).ravel(), np.asarray(labels, np.float64).ravel()
    counts = _confusion(logits, labels)
    tp, fp, fn, tn = (float(c) for c in counts)
    total = tp + fp + fn + tn
    out = {
        "step_accuracy": (tp + tn) / total if total else float("nan"),
        "step_error_precision": tp / (tp + fp) if tp + fp else float("nan"),
        "step_error_recall": tp / (tp + fn) if tp + fn else float("nan"),
        "step_error_f1": _f1(tp, fp, fn),
        "step_f1": _macro_f1(counts),
        "steps": total,
    }
    labelled = ~np.isnan(labels)
    area = auroc(logits[labelled], labels[labelled] >= 0.5)
    if np.isfinite(area):
        out["step_auroc"] = area
    return out


# ----- first error (ProcessBench) -----------------------------------------------------------------------------------
def first_error(values: np.ndarray, threshold_below: float) -> int | None:
    """Index of the first value < `threshold_below` (NaN skipped), or None."""
    values = np.asarray(values, np.float64)
    hits = np.flatnonzero(~np.isnan(values) & (values < threshold_below))
    return int(hits[0]) if len(hits) else None


def _first_error_hits(solutions: Sequence[Solution]) -> tuple[np.ndarray, np.ndarray]:
    """Per solution: whether it is erroneous (1), correct (0) or unlabelled (-1), and whether the predicted first
    error (first step with probability < 0.5, i.e. logit < 0) equals the gold one (first label < 0.5)."""
    kind, hit = [], []
    for logits, labels in solutions:
        labels = np.asarray(labels, np.float64)
        if np.isnan(labels).all():
            kind.append(-1)
            hit.append(False)
            continue
        gold, predicted = first_error(labels, 0.5), first_error(logits, 0.0)
        kind.append(0 if gold is None else 1)
        hit.append(gold == predicted)
    return np.asarray(kind, np.int64), np.asarray(hit, bool)


def _first_error_summary(kind: np.ndarray, hit: np.ndarray) -> dict[str, float]:
    erroneous, correct = kind == 1, kind == 0
    acc_err = float(hit[erroneous].mean()) if erroneous.any() else float("nan")
    acc_ok = float(hit[correct].mean()) if correct.any() else float("nan")
    if np.isnan(acc_err) or np.isnan(acc_ok):
        f1 = float("nan")
    else:
        f1 = 2 * acc_err * acc_ok / (acc_err + acc_ok) if acc_err + acc_ok else 0.0
    labelled = kind >= 0
    return {
        "first_error_accuracy_erroneous": acc_err,
        "first_error_accuracy_correct": acc_ok,
        "first_error_f1": f1,
        "first_error_accuracy": float(hit[labelled].mean()) if labelled.any() else float("nan"),
        "erroneous_solutions": float(erroneous.sum()),
        "correct_solutions": float(correct.sum()),
    }


def first_error_metrics(solutions: Sequence[Solution]) -> dict[str, float]:
    """ProcessBench's first-error identification over `(step logits, step labels)` solutions.

    Predicted first error: the first step whose probability is < 0.5 (none: the solution is judged correct); gold:
    the first labelled step with label < 0.5 (none: a correct solution). `first_error_accuracy_erroneous` is the
    share of erroneous solutions whose first wrong step is located exactly, `first_error_accuracy_correct` the
    share of correct solutions judged correct, `first_error_f1` their harmonic mean (ProcessBench's F1; NaN when
    either kind is absent); `first_error_accuracy` is the exact-match share over all solutions. Solutions with no
    labelled step are left out.
    """
    return _first_error_summary(*_first_error_hits(solutions))


# ----- best of N ----------------------------------------------------------------------------------------------------
def solution_is_correct(labels: np.ndarray) -> bool | None:
    """A solution is correct when every labelled step is positive (>= 0.5); None when no step is labelled."""
    labels = np.asarray(labels, np.float64)
    labelled = labels[~np.isnan(labels)]
    return None if labelled.size == 0 else bool((labelled >= 0.5).all())


def best_of_n_accuracy(groups: Sequence[Sequence[Solution]], rule: str) -> tuple[float, int]:
    """Best-of-N selection under the aggregation `rule`: in each group (the solutions of one prompt), the solution
    with the highest aggregated reward is picked; returns the share of groups where it is correct and the number
    of groups counted. Only groups with at least one correct and one wrong solution count (elsewhere any pick is
    equally right); a tie for the best reward counts as the share of correct solutions among the tied ones (the
    expected accuracy of a random tie-break). Solutions without a labelled step are left out."""
    scores = []
    for group in groups:
        kept = [(logits, solution_is_correct(labels)) for logits, labels in group]
        kept = [(logits, ok) for logits, ok in kept if ok is not None and len(logits)]
        correct = np.array([ok for _, ok in kept], bool)
        if not correct.any() or correct.all():
            continue
        rewards = np.array([aggregate_steps(step_probabilities(logits), rule) for logits, _ in kept])
        best = rewards == rewards.max()
        scores.append(float(correct[best].mean()))
    return (float(np.mean(scores)) if scores else float("nan")), len(scores)


def group_by_prompt(prompts: Sequence[Hashable]) -> list[np.ndarray]:
    """Indices of the solutions of each distinct prompt, in order of first appearance."""
    groups: dict[Hashable, list[int]] = {}
    for i, prompt in enumerate(prompts):
        groups.setdefault(prompt, []).append(i)
    return [np.asarray(g, np.int64) for g in groups.values()]


# ----- training logs and evaluation ---------------------------------------------------------------------------------
def unpad_solutions(predictions: np.ndarray) -> list[Solution]:
    """Per-solution `(logits, labels)` from padded predictions `[solutions, max_steps, 2]` (logit, label): steps
    whose label is negative (-1, or the Trainer's -100 eval padding) are padding; NaN (masked) steps are kept."""
    predictions = np.asarray(predictions, np.float64)
    out = []
    for row in predictions.reshape(-1, predictions.shape[-2], 2):
        present = ~(row[:, 1] < 0)  # NaN compares False: a masked step stays
        if present.any():
            out.append((row[present, 0], row[present, 1]))
    return out


def stepwise_metrics(predictions: np.ndarray) -> dict[str, float]:
    """Training-log and evaluation metrics from padded per-solution predictions `[solutions, max_steps, 2]`
    (logit, label; padding label -1 or -100, masked NaN): `step_metrics` and `first_error_metrics`, plus the mean
    step probability."""
    solutions = unpad_solutions(predictions)
    if not solutions:
        return {}
    logits = np.concatenate([s[0] for s in solutions])
    labels = np.concatenate([s[1] for s in solutions])
    out = step_metrics(logits, labels)
    out.update(first_error_metrics(solutions))
    out["step_probability_mean"] = float(step_probabilities(logits).mean())
    return out


def evaluate_solutions(
    solutions: Sequence[Solution],
    groups: Sequence[Hashable] | None = None,
    lengths: Sequence[float] | None = None,
    aggregation: str = "min",
) -> Evaluation:
    """Everything an evaluation reports on scored solutions (one per scored row).

    Args:
        solutions: per solution, `(step logits [N_i], gold step labels [N_i])`: the reward read at each step
            separator, and 1 / 0 / soft in [0, 1] / NaN (masked) labels.
        groups: per solution, a hashable key of its prompt (e.g. the prompt text); solutions sharing one form a
            best-of-N group. None: no best-of-N metrics.
        lengths: per solution, its length in tokens (the report's reward-vs-length plot); None: not plotted.
        aggregation: the rule whose solution rewards the report plots (`STEP_AGGREGATIONS`).

    Metrics: `step_metrics` (headline `step_f1`), `first_error_metrics`, `solutions`, and with `groups`
    `best_of_n_<rule>` for every rule of `STEP_AGGREGATIONS` plus `best_of_n_groups` (how many groups had a correct
    and a wrong solution). The headline's bootstrap resamples solutions (the steps of one solution are not
    independent). Curves: `chosen` / `rejected` (logits of correct / wrong steps), `rewards` (aggregated per
    solution) and `lengths`.
    """
    solutions = [(np.asarray(lg, np.float64), np.asarray(lb, np.float64)) for lg, lb in solutions]
    for i, (lg, lb) in enumerate(solutions):
        if lg.shape != lb.shape:
            raise ValueError(f"solution {i}: {lg.size} step rewards for {lb.size} step labels")
    if groups is not None and len(groups) != len(solutions):
        raise ValueError(f"{len(groups)} group keys for {len(solutions)} solutions")
    empty = np.zeros(0)
    logits = np.concatenate([s[0] for s in solutions]) if solutions else empty
    labels = np.concatenate([s[1] for s in solutions]) if solutions else empty
    metrics = step_metrics(logits, labels)
    metrics.update(first_error_metrics(solutions))
    metrics["solutions"] = float(len(solutions))
    if groups is not None:
        grouped = [[solutions[i] for i in idx] for idx in group_by_prompt(groups)]
        for rule in STEP_AGGREGATIONS:
            metrics[f"best_of_n_{rule}"], counted = best_of_n_accuracy(grouped, rule)
        metrics["best_of_n_groups"] = float(counted)
    counts = np.array([_confusion(lg, lb) for lg, lb in solutions], np.int64).reshape(-1, 4)
    labelled = ~np.isnan(labels)
    rewards = np.array(
        [aggregate_steps(step_probabilities(lg), aggregation) if lg.size else np.nan for lg, _ in solutions]
    )
    curves = {
        "chosen": logits[labelled & (labels >= 0.5)],
        "rejected": logits[labelled & (labels < 0.5)],
        "rewards": rewards,
        "lengths": np.asarray(lengths, np.float64) if lengths is not None else np.zeros(0),
    }
    return Evaluation(metrics, lambda i: _macro_f1(counts[i].sum(axis=0)), len(solutions), curves)
