"""Stepwise metrics on hand-computed cases: step classification, ProcessBench first-error identification,
best-of-N selection per aggregation, the padded per-solution predictions of training logs, and the evaluation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rm_trl.metrics.stepwise import (
    STEP_AGGREGATIONS,
    auroc,
    best_of_n_accuracy,
    evaluate_solutions,
    first_error_metrics,
    step_metrics,
    stepwise_metrics,
)

NAN = float("nan")


def test_step_metrics_by_hand():
    # labels: correct, correct, wrong, wrong, masked; predicted (logit >= 0 = correct): c, w, w, c, w
    logits = np.array([2.0, -1.0, -3.0, 0.5, -9.0])
    labels = np.array([1.0, 1.0, 0.0, 0.0, NAN])
    out = step_metrics(logits, labels)
    # error class: tp = 1 (step 3), fp = 1 (step 2), fn = 1 (step 4), tn = 1 (step 1)
    assert out["step_accuracy"] == 0.5 and out["steps"] == 4
    assert out["step_error_precision"] == 0.5 and out["step_error_recall"] == 0.5 and out["step_error_f1"] == 0.5
    assert out["step_f1"] == pytest.approx(0.5)
    # AUROC of logits for "correct": positives {2, -1}, negatives {-3, 0.5}: pairs won 2 > -3, 2 > 0.5, -1 > -3
    assert out["step_auroc"] == pytest.approx(3 / 4)


def test_step_metrics_soft_labels_and_one_class():
    out = step_metrics(np.array([1.0, 2.0]), np.array([0.8, 0.6]))  # both correct (>= 0.5), both predicted correct
    assert out["step_accuracy"] == 1.0 and "step_auroc" not in out
    assert math.isnan(out["step_error_f1"]) and out["step_f1"] == 1.0  # only the correct class exists


def test_auroc_ties_count_half():
    assert auroc(np.array([1.0, 1.0]), np.array([True, False])) == 0.5


def test_first_error_metrics_processbench():
    solutions = [
        (np.array([1.0, -1.0, -1.0]), np.array([1.0, 0.0, 0.0])),  # erroneous, first error at 1, predicted 1: hit
        (np.array([-1.0, -1.0, 1.0]), np.array([1.0, 1.0, 0.0])),  # erroneous at 2, predicted 0: miss
        (np.array([1.0, 2.0]), np.array([1.0, 1.0])),  # correct, judged correct: hit
        (np.array([1.0, -2.0]), np.array([1.0, NAN])),  # correct (masked step ignored), predicted error at 1: miss
        (np.array([1.0]), np.array([NAN])),  # nothing labelled: left out
    ]
    out = first_error_metrics(solutions)
    assert out["first_error_accuracy_erroneous"] == 0.5 and out["first_error_accuracy_correct"] == 0.5
    assert out["first_error_f1"] == pytest.approx(0.5)
    assert out["first_error_accuracy"] == 0.5
    assert out["erroneous_solutions"] == 2 and out["correct_solutions"] == 2
    acc_err, acc_ok = 1.0, 0.5
    out = first_error_metrics(solutions[:1] + solutions[2:4])
    assert out["first_error_f1"] == pytest.approx(2 * acc_err * acc_ok / (acc_err + acc_ok))
    assert math.isnan(first_error_metrics(solutions[2:3])["first_error_f1"])  # no erroneous solution


def test_best_of_n_per_rule():
    right = (np.array([0.0, 0.0, 0.0]), np.array([1.0, 1.0, 1.0]))  # p = .5, .5, .5
    wrong = (np.array([3.0, 3.0, -3.0]), np.array([1.0, 1.0, 0.0]))  # high mean, low min and last
    all_right = [right, right]
    groups = [[right, wrong], all_right]
    assert best_of_n_accuracy(groups, "min") == (1.0, 1)  # min: .5 vs sigmoid(-3)
    assert best_of_n_accuracy(groups, "mean") == (0.0, 1)  # mean: .5 vs (2 sigmoid(3) + sigmoid(-3)) / 3 > .5
    tie = (np.array([0.0, 0.0, 0.0]), np.array([1.0, 0.0, 1.0]))
    assert best_of_n_accuracy([[right, tie]], "min") == (0.5, 1)  # a tie counts as the expected random pick
    assert math.isnan(best_of_n_accuracy([all_right], "min")[0])


def test_stepwise_metrics_from_padded_predictions():
    # two solutions, padded to 3 steps with -1 (training) and -100 (the Trainer's eval padding), one masked step
    predictions = np.array(
        [
            [[1.0, 1.0], [-1.0, 0.0], [0.5, NAN]],
            [[2.0, 1.0], [-100.0, -100.0], [-100.0, -100.0]],
            [[-100.0, -100.0], [-100.0, -100.0], [-100.0, -100.0]],  # a padding row
        ]
    )
    out = stepwise_metrics(predictions)
    assert out["steps"] == 3 and out["step_accuracy"] == 1.0
    assert out["first_error_accuracy_erroneous"] == 1.0 and out["first_error_accuracy_correct"] == 1.0
    assert stepwise_metrics(np.full((1, 2, 2), -1.0)) == {}


def test_evaluate_solutions():
    logits = [np.array([1.0, -1.0]), np.array([1.0, 1.0]), np.array([-1.0])]
    labels = [np.array([1.0, 0.0]), np.array([1.0, 1.0]), np.array([1.0])]
    evaluation = evaluate_solutions(list(zip(logits, labels)), groups=["a", "a", "b"], lengths=[5, 6, 3])
    m = evaluation.metrics
    assert m["solutions"] == 3 and m["steps"] == 5 and evaluation.rows == 3
    assert m["step_f1"] == pytest.approx(step_metrics(np.concatenate(logits), np.concatenate(labels))["step_f1"])
    for rule in STEP_AGGREGATIONS:
        assert m[f"best_of_n_{rule}"] == 1.0
    assert m["best_of_n_groups"] == 1
    assert evaluation.headline(np.arange(3)) == pytest.approx(m["step_f1"])
    assert evaluation.headline(np.array([1, 1])) == 1.0  # resampled solutions: only correct steps, all right
    assert list(evaluation.curves["chosen"]) == [1.0, 1.0, 1.0, -1.0] and list(evaluation.curves["rejected"]) == [-1.0]
    with pytest.raises(ValueError, match="solution 0"):
        evaluate_solutions([(np.array([1.0]), np.array([1.0, 0.0]))])
