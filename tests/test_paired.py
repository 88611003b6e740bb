"""Paired comparisons (`rm_trl.metrics.paired`): checked against scipy and against cases whose answer is known."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from rm_trl.metrics.paired import (
    mcnemar,
    paired_bootstrap,
    paired_mean_difference,
    paired_seed_difference,
    seed_interval,
)


def test_seed_interval_matches_the_t_formula():
    values = [0.61, 0.65, 0.58, 0.70]
    interval = seed_interval(values)
    half = stats.t.ppf(0.975, 3) * np.std(values, ddof=1) / 2
    assert interval.mean == pytest.approx(np.mean(values))
    assert (interval.low, interval.high) == pytest.approx((np.mean(values) - half, np.mean(values) + half))
    assert interval.n == 4


def test_seed_interval_leaves_out_nan_and_says_so():
    interval = seed_interval([0.5, float("nan"), 0.7])
    assert interval.n == 2 and interval.mean == pytest.approx(0.6)
    assert np.isnan(seed_interval([0.5]).low) and seed_interval([]).n == 0


def test_paired_seed_difference_sees_what_marginal_intervals_miss():
    # Seeds move both settings together; B is always 0.01 lower: marginal intervals overlap, the paired one does not.
    a = np.array([0.60, 0.70, 0.65, 0.75, 0.55])
    b = a - np.array([0.010, 0.012, 0.009, 0.011, 0.010])
    ia, ib = seed_interval(a), seed_interval(b)
    assert ia.low < ib.high  # marginal intervals overlap
    diff = paired_seed_difference(a, b)
    assert diff.excludes_zero and diff.low > 0
    assert diff.p_value == pytest.approx(stats.ttest_rel(a, b).pvalue)


def test_paired_seed_difference_of_identical_settings_is_zero_with_p_one():
    diff = paired_seed_difference([0.6, 0.7, 0.8], [0.6, 0.7, 0.8])
    assert diff.estimate == 0 and diff.p_value == 1.0 and not diff.excludes_zero
    with pytest.raises(ValueError):
        paired_seed_difference([1, 2], [1])


def test_paired_bootstrap_of_a_model_with_itself():
    correct = np.random.default_rng(0).random(200) < 0.7
    diff = paired_mean_difference(correct, correct)
    assert diff.estimate == 0 and diff.low == 0 and diff.high == 0 and diff.p_value == 1.0


def test_paired_bootstrap_detects_a_real_difference_and_not_a_null_one():
    rng = np.random.default_rng(1)
    a = rng.random(400) < 0.75
    b = a.copy()
    flip = rng.choice(400, 40, replace=False)  # B loses 40 items A gets right, wins none
    b[flip[a[flip]]] = False
    diff = paired_mean_difference(a, b, resamples=1000)
    assert diff.excludes_zero and diff.p_value < 0.01
    null = paired_mean_difference(rng.random(400) < 0.7, rng.random(400) < 0.7, resamples=1000)
    assert null.low < null.estimate < null.high


def test_paired_bootstrap_resamples_whole_groups():
    # Two groups, each constant: with group resampling only group-level outcomes exist.
    values = np.array([1.0, 1.0, 1.0, 0.0, 0.0, 0.0])
    groups = ["p1", "p1", "p1", "p2", "p2", "p2"]
    seen = set()

    def statistic(idx):
        seen.add(round(float(values[idx].mean()), 6))
        return float(values[idx].mean())

    paired_bootstrap(statistic, 6, groups=groups, resamples=200)
    assert seen <= {0.0, 0.5, 1.0}
    with pytest.raises(ValueError):
        paired_bootstrap(statistic, 6, groups=["p1"])


def test_mcnemar_counts_discordant_items_and_matches_the_binomial_test():
    a = [True] * 10 + [False] * 2 + [True] * 30
    b = [False] * 10 + [True] * 2 + [True] * 30
    result = mcnemar(a, b)
    assert (result["a_only"], result["b_only"]) == (10, 2)
    assert result["p_value"] == pytest.approx(stats.binomtest(10, 12, 0.5).pvalue)
    assert mcnemar([True, False], [True, False])["p_value"] == 1.0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.booleans(), min_size=1, max_size=60), st.lists(st.booleans(), min_size=1, max_size=60))
def test_mcnemar_is_symmetric_and_a_probability(a, b):
    n = min(len(a), len(b))
    forward, backward = mcnemar(a[:n], b[:n]), mcnemar(b[:n], a[:n])
    assert forward["p_value"] == pytest.approx(backward["p_value"])
    assert 0 < forward["p_value"] <= 1


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-1, 1, allow_nan=False), min_size=2, max_size=30))
def test_paired_bootstrap_interval_contains_its_estimate_for_means(values):
    a = np.asarray(values)
    b = np.zeros_like(a)
    diff = paired_mean_difference(a, b, resamples=200)
    assert diff.low - 1e-12 <= diff.estimate <= diff.high + 1e-12
    assert 0 < diff.p_value <= 1
