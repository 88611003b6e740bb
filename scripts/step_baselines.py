"""Trivial baselines for process reward models on stepwise data, with 95% bootstrap intervals.

    python scripts/step_baselines.py                                  # data/stepwise eval and test splits
    python scripts/step_baselines.py --split data/stepwise/test.jsonl --scores scored.jsonl

A process reward model is only worth something if it beats rules that never read a step:

- `every step correct`: every step gets probability 1 (no error predicted; ProcessBench: "the solution is correct");
- `position / length rule`: a step is predicted wrong iff its index (or its length in characters) passes a
  threshold; the feature, direction and threshold that give the best step macro-F1 on the train split are used;
- `last step`: the last step of every solution is predicted wrong, the others right (ProcessBench's "the error
  is at the last step" for first-error identification).

`--scores FILE` adds the rows of FILE (same order as the split, e.g. `rm-trl score` output) as a model to the
table: its `step_probabilities` column, or `step_rewards` (logits). Metrics follow docs/process_rewards.md: step
accuracy, F1 of the error class and macro-F1 (labels `true` = correct; masked `null` labels are skipped);
predicted first error = the first step with probability < 0.5 (none: the solution is judged correct); accuracy on
erroneous solutions (exact first-error step), accuracy on correct ones and their harmonic mean (`first_error_f1`).
Intervals resample problems (`problem_id`, else the prompt), since a problem's solutions are not independent.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable

import numpy as np

from rm_trl.metrics.stepwise import best_of_n_accuracy, first_error_metrics, group_by_prompt, step_metrics

DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "stepwise")
METRICS = (
    "step_accuracy",
    "step_error_f1",
    "step_f1",
    "first_error_accuracy_erroneous",
    "first_error_accuracy_correct",
    "first_error_f1",
    "best_of_n_min",
)
BOOTSTRAP_SAMPLES = 1000
SURE = 20.0  # the logit a rule gives a step it calls correct (-SURE: wrong)


def load(path: str) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def labels_of(row: dict) -> np.ndarray:
    return np.array([np.nan if label is None else float(label) for label in row["labels"]], np.float64)


def is_erroneous(row: dict) -> bool:
    labels = labels_of(row)
    return bool(np.any(labels[~np.isnan(labels)] < 0.5))


def evaluate(rows: list[dict], logits: list[np.ndarray], draw: list[np.ndarray] | None = None) -> dict:
    """rm-trl's step, first-error and best-of-N metrics (`rm_trl.metrics.stepwise`) of per-step logits; `draw`
    lists the row indices of each (re)sampled problem (default: the problems of `rows` once each)."""
    draw = problems(rows) if draw is None else draw
    groups = [[(np.asarray(logits[i], np.float64), labels_of(rows[i])) for i in members] for members in draw]
    solutions = [solution for group in groups for solution in group]
    out = step_metrics(np.concatenate([s[0] for s in solutions]), np.concatenate([s[1] for s in solutions]))
    out.update(first_error_metrics(solutions))
    out["best_of_n_min"] = best_of_n_accuracy(groups, "min")[0]
    return out


def problems(rows: list[dict]) -> list[np.ndarray]:
    """Row indices of each problem (`problem_id`, else the prompt)."""
    return group_by_prompt([str(row.get("problem_id", row["prompt"])) for row in rows])


def problem_counts(rows: list[dict], logits: list[np.ndarray], members: list[np.ndarray]) -> np.ndarray:
    """Per problem, the sums the metrics are ratios of: [correct steps predicted correct, correct steps predicted
    wrong, wrong steps predicted correct, wrong steps predicted wrong, erroneous solutions, of them with the first
    error located, correct solutions, of them judged correct, best-of-N (min) counted, best-of-N (min) right]."""
    out = np.zeros((len(members), 10))
    for g, idx in enumerate(members):
        solutions = [(np.asarray(logits[i], np.float64), labels_of(rows[i])) for i in idx]
        for lg, lb in solutions:
            kept = ~np.isnan(lb)
            truth, predicted = lb[kept] >= 0.5, lg[kept] >= 0.0
            out[g, :4] += [
                np.sum(truth & predicted),
                np.sum(truth & ~predicted),
                np.sum(~truth & predicted),
                np.sum(~truth & ~predicted),
            ]
        fe = first_error_metrics(solutions)
        err, ok = fe["erroneous_solutions"], fe["correct_solutions"]
        out[g, 4:6] = [err, np.nan_to_num(fe["first_error_accuracy_erroneous"]) * err]
        out[g, 6:8] = [ok, np.nan_to_num(fe["first_error_accuracy_correct"]) * ok]
        value, counted = best_of_n_accuracy([solutions], "min")
        out[g, 8:10] = [counted, value * counted if counted else 0.0]
    return out


def metrics_from_counts(c: np.ndarray) -> dict[str, float]:
    """The metrics of `METRICS` from summed `problem_counts` (the same definitions as `rm_trl.metrics.stepwise`)."""
    cc, cw, wc, ww, err, err_hit, ok, ok_hit, bon, bon_hit = c

    def ratio(a: float, b: float) -> float:
        return a / b if b else float("nan")

    def f1(tp: float, fp: float, fn: float) -> float:
        return ratio(2 * tp, 2 * tp + fp + fn) if tp else 0.0

    acc_err, acc_ok = ratio(err_hit, err), ratio(ok_hit, ok)
    error_f1, correct_f1 = f1(ww, cw, wc), f1(cc, wc, cw)
    return {
        "step_accuracy": ratio(cc + ww, cc + cw + wc + ww),
        "step_error_f1": error_f1,
        "step_f1": (error_f1 + correct_f1) / 2,
        "first_error_accuracy_erroneous": acc_err,
        "first_error_accuracy_correct": acc_ok,
        "first_error_f1": ratio(2 * acc_err * acc_ok, acc_err + acc_ok) if acc_err + acc_ok else 0.0,
        "best_of_n_min": ratio(bon_hit, bon),
    }


def with_intervals(rows: list[dict], logits: list[np.ndarray], samples: int, seed: int = 0) -> dict:
    """Each metric with a 95% percentile bootstrap interval over problems: {name: (value, low, high)}. The point
    value is `rm_trl.metrics.stepwise`'s own; the resamples sum per-problem counts (checked against it)."""
    members = problems(rows)
    point = evaluate(rows, logits, members)
    counts = problem_counts(rows, logits, members)
    check = metrics_from_counts(counts.sum(axis=0))
    for name in METRICS:
        if not np.isclose(check[name], point[name], equal_nan=True):
            raise AssertionError(f"{name}: bootstrap counts give {check[name]}, rm_trl.metrics {point[name]}")
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(members), (samples, len(members)))
    draws = [metrics_from_counts(counts[p].sum(axis=0)) for p in picks]
    out = {}
    for name in METRICS:
        values = np.array([d[name] for d in draws], dtype=np.float64)
        values = values[np.isfinite(values)]
        low, high = (np.percentile(values, 2.5), np.percentile(values, 97.5)) if values.size else (np.nan, np.nan)
        out[name] = (point[name], float(low), float(high))
    return out


def step_feature(feature: str) -> Callable[[dict], list[float]]:
    if feature == "index":
        return lambda row: [float(k) for k in range(len(row["completions"]))]
    return lambda row: [float(len(step)) for step in row["completions"]]


def threshold_rule(feature: str, direction: str, threshold: float) -> Callable[[dict], np.ndarray]:
    """A step is predicted wrong iff its feature is >= threshold (direction `ge`) or <= threshold (`le`)."""
    values = step_feature(feature)

    def rule(row: dict) -> np.ndarray:
        v = np.array(values(row))
        wrong = v >= threshold if direction == "ge" else v <= threshold
        return np.where(wrong, -SURE, SURE)

    rule.description = f"step {feature} {'>=' if direction == 'ge' else '<='} {threshold:g} -> wrong"
    return rule


def fit_position_rule(train: list[dict]) -> Callable[[dict], np.ndarray]:
    """The step-index or step-length threshold rule with the best step macro-F1 on `train`."""
    best, best_score = None, -1.0
    for feature in ("index", "length"):
        values = sorted({v for row in train for v in step_feature(feature)(row)})
        for direction in ("ge", "le"):
            for threshold in values:
                rule = threshold_rule(feature, direction, threshold)
                score = evaluate(train, [rule(row) for row in train])["step_f1"]
                if score > best_score:
                    best, best_score = rule, score
    return best


def read_scores(path: str, rows: list[dict]) -> list[np.ndarray]:
    """Per-row step logits from scored rows (`step_rewards`, else the logit of `step_probabilities`)."""
    scored = load(path)
    if len(scored) != len(rows):
        raise SystemExit(f"{path} has {len(scored)} rows, the split has {len(rows)}")
    out = []
    for i, row in enumerate(scored):
        if "step_rewards" in row:
            p = np.asarray(row["step_rewards"], dtype=np.float64)
        elif "step_probabilities" in row:
            q = np.clip(np.asarray(row["step_probabilities"], dtype=np.float64), 1e-12, 1 - 1e-12)
            p = np.log(q) - np.log1p(-q)
        else:
            raise SystemExit(f"{path} row {i} has neither step_probabilities nor step_rewards")
        if len(p) != len(rows[i]["completions"]):
            raise SystemExit(f"{path} row {i}: {len(p)} step scores for {len(rows[i]['completions'])} steps")
        out.append(p)
    return out


def table(rows: list[dict], predictors: dict[str, list[np.ndarray]], samples: int) -> str:
    lines = ["| predictor | " + " | ".join(METRICS) + " |", "|---" * (len(METRICS) + 1) + "|"]
    for name, logits in predictors.items():
        result = with_intervals(rows, logits, samples)
        cells = [f"{v:.3f} [{lo:.3f}, {hi:.3f}]" for v, lo, hi in (result[m] for m in METRICS)]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train", default=os.path.join(DATA, "train.jsonl"), help="fits the position rule")
    parser.add_argument("--split", action="append", help="split(s) to evaluate (default: data/stepwise eval and test)")
    parser.add_argument("--scores", help="a model's scored rows for the (single) --split, added to the table")
    parser.add_argument("--bootstrap", type=int, default=BOOTSTRAP_SAMPLES)
    args = parser.parse_args(argv)
    splits = args.split or [os.path.join(DATA, "eval.jsonl"), os.path.join(DATA, "test.jsonl")]
    if args.scores and len(splits) != 1:
        parser.error("--scores needs exactly one --split")
    rule = fit_position_rule(load(args.train))
    for path in splits:
        rows = load(path)
        n_problems = len({str(r.get("problem_id", r["prompt"])) for r in rows})
        erroneous = sum(is_erroneous(r) for r in rows)
        print(f"\n{path}: {len(rows)} solutions of {n_problems} problems ({erroneous} with an error)")
        predictors = {
            "every step correct": [np.full(len(r["completions"]), SURE) for r in rows],
            f"position/length rule ({rule.description})": [rule(r) for r in rows],
            "last step wrong": [np.r_[np.full(len(r["completions"]) - 1, SURE), -SURE] for r in rows],
        }
        if args.scores:
            predictors[f"model ({os.path.basename(args.scores)})"] = read_scores(args.scores, rows)
        print(table(rows, predictors, args.bootstrap))


if __name__ == "__main__":
    main()
