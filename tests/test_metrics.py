"""Forecast scores on hand-made cases with known answers (no sampling)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from sloth_bayes.metrics import (
    coverage,
    crps,
    crps_normal,
    interval_coverage_from_pit,
    pit,
    reliability,
    summarise_cells,
)

N_DRAWS, N_CELLS = 2000, 3000


@pytest.fixture(scope="module")
def normal_case():
    rng = np.random.default_rng(42)
    draws = rng.normal(size=(N_DRAWS, N_CELLS))
    truth = rng.normal(size=N_CELLS)
    return draws, truth


def test_calibrated_predictive_covers_nominal_and_pit_is_flat(normal_case):
    draws, truth = normal_case
    lo90, lo50, hi50, hi90 = np.quantile(draws, [0.05, 0.25, 0.75, 0.95], axis=0)
    assert coverage(lo90, hi90, truth) == pytest.approx(0.9, abs=0.02)
    assert coverage(lo50, hi50, truth) == pytest.approx(0.5, abs=0.03)
    u = pit(draws, truth)
    assert stats.kstest(u, "uniform").pvalue > 0.01
    counts = np.histogram(u, bins=10, range=(0, 1))[0]
    assert stats.chisquare(counts).pvalue > 0.01
    assert interval_coverage_from_pit(u, 0.9) == pytest.approx(0.9, abs=0.02)
    assert interval_coverage_from_pit(u, 0.5) == pytest.approx(0.5, abs=0.03)


def test_over_confident_predictive_fails(normal_case):
    draws, truth = normal_case
    narrow = 0.5 * draws  # half the sd of the truths' distribution
    lo, hi = np.quantile(narrow, [0.05, 0.95], axis=0)
    cov = coverage(lo, hi, truth)
    # P(|Z| <= 1.645 / 2) = 0.59
    assert cov == pytest.approx(0.59, abs=0.03)
    assert cov < 0.8
    u = pit(narrow, truth)
    counts = np.histogram(u, bins=10, range=(0, 1))[0]
    assert counts[0] > 2 * counts[4] and counts[-1] > 2 * counts[5]  # U-shaped
    assert interval_coverage_from_pit(u, 0.9) < 0.7


def test_randomised_pit_is_uniform_with_atoms():
    """Truths and draws from the same distribution with point masses at 0 and 1."""
    rng = np.random.default_rng(1)
    n_cells, n_draws = 4000, 500
    loc = rng.uniform(-0.2, 1.2, n_cells)

    def sample(shape):
        return np.clip(loc + 0.15 * rng.standard_normal(shape), 0.0, 1.0)

    draws = sample((n_draws, n_cells))
    truth = sample(n_cells)
    assert (truth == 0).mean() > 0.05 and (truth == 1).mean() > 0.05
    u = pit(draws, truth, seed=0)
    assert stats.kstest(u, "uniform").pvalue > 0.01
    # without the randomisation, ties at the atoms pile up at one end
    naive = (draws <= truth).mean(axis=0)
    assert stats.kstest(naive, "uniform").pvalue < 1e-6


def test_pit_reproducible_nan_and_axis():
    rng = np.random.default_rng(0)
    draws = rng.normal(size=(100, 3))
    truth = np.array([0.0, np.nan, 5.0])
    a, b = pit(draws, truth, seed=7), pit(draws, truth, seed=7)
    np.testing.assert_array_equal(a, b)
    assert np.isnan(a[1]) and a[2] == 1.0
    np.testing.assert_allclose(pit(draws.T, truth, axis=1, seed=7), a)
    with pytest.raises(ValueError, match="shape"):
        pit(draws, truth[:2])


def test_crps_matches_closed_form_for_normal():
    rng = np.random.default_rng(3)
    mean = np.array([0.0, 0.5, -1.0, 2.0])
    sd = np.array([1.0, 0.1, 2.0, 0.5])
    truth = np.array([0.3, 0.5, 1.0, -0.5])
    draws = mean + sd * rng.standard_normal((40000, 4))
    np.testing.assert_allclose(crps(draws, truth), crps_normal(mean, sd, truth), rtol=0.02)


def test_crps_sorted_formula_equals_brute_force():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(57, 2))
    y = np.array([0.1, -2.0])
    brute = np.abs(x - y).mean(0) - 0.5 * np.abs(x[:, None, :] - x[None, :, :]).mean((0, 1))
    np.testing.assert_allclose(crps(x, y), brute, rtol=1e-12)
    # a point mass scores its absolute error; a NaN truth scores NaN
    assert crps(np.full((10, 1), 0.25), [0.75])[0] == pytest.approx(0.5)
    assert np.isnan(crps(x, np.array([np.nan, 0.0]))[0])


def test_coverage_ignores_missing():
    assert coverage([0, 0, 0], [1, 1, 1], [0.5, 2.0, np.nan]) == 0.5
    assert np.isnan(coverage([0.0], [1.0], [np.nan]))


def test_reliability_known_cases():
    # calibrated: 20% predicted, 1 of 5 happened, in each of two bins
    p = [0.2] * 5 + [0.7] * 10
    o = [1, 0, 0, 0, 0] + [1] * 7 + [0] * 3
    rel = reliability(p, o)
    assert rel.calibration_error == pytest.approx(0.0, abs=1e-12)
    assert rel.brier == pytest.approx((0.64 + 4 * 0.04 + 7 * 0.09 + 3 * 0.49) / 15)
    assert list(rel.table["n"]) == [5, 10]
    # always 0.9, never happens: error 0.9, Brier 0.81
    rel = reliability([0.9] * 8, [False] * 8)
    assert rel.calibration_error == pytest.approx(0.9)
    assert rel.brier == pytest.approx(0.81)
    assert rel.table["observed"].iloc[0] == 0.0


def _cells():
    # two groups, two benchmarks; medians off by known amounts
    return pd.DataFrame(
        {
            "set": "v1",
            "group": ["a", "a", "a", "b"],
            "model": ["m1", "m1", "m2", "m3"],
            "benchmark": ["X", "Y", "X", "Y"],
            "truth": [0.50, 0.40, 0.30, 0.80],
            "median": [0.52, 0.40, 0.20, 0.70],
            "lower_50": [0.49, 0.35, 0.15, 0.60],
            "upper_50": [0.55, 0.45, 0.25, 0.75],
            "lower_90": [0.40, 0.30, 0.10, 0.65],
            "upper_90": [0.60, 0.50, 0.35, 0.90],
            "point": [0.53, 0.41, 0.20, 0.70],
            "p_overestimate": [0.5, 0.5, 0.5, 0.5],
            "crps": [0.01, 0.01, 0.05, 0.05],
            "pit": [0.4, 0.5, 0.9, 0.97],
            "pred_point_skills": [0.50, 0.40, 0.30, 0.90],
            "pred_flops_sigmoid": [0.60, 0.40, 0.30, 0.80],
        }
    )


def test_summarise_cells_pooled_and_group_mean():
    s = summarise_cells(_cells())
    assert set(s["level"]) == {"pooled", "group mean", "benchmark", "group"}
    pooled = s[s["level"] == "pooled"].iloc[0]
    assert pooled["n"] == 4
    assert pooled["mae_points"] == pytest.approx((2 + 0 + 10 + 10) / 4)
    assert pooled["coverage_50"] == pytest.approx(0.5)  # cells 1 and 2
    assert pooled["coverage_90"] == pytest.approx(1.0)
    assert pooled["share_over"] == pytest.approx(0.25)
    assert pooled["over_rate_point"] == pytest.approx(0.5)  # 0.53 > 0.50, 0.41 > 0.40
    assert pooled["mae_point_skills_points"] == pytest.approx(2.5)
    assert pooled["mae_flops_sigmoid_points"] == pytest.approx(2.5)
    assert pooled["pit_coverage_90"] == pytest.approx(0.75)
    groups = s[s["level"] == "group"].set_index("key")
    assert groups.loc["a", "mae_points"] == pytest.approx(4.0)
    assert groups.loc["b", "mae_points"] == pytest.approx(10.0)
    gmean = s[s["level"] == "group mean"].iloc[0]
    assert gmean["mae_points"] == pytest.approx(7.0)  # every group weighs the same
    assert gmean["n"] == 4
    per_bench = summarise_cells(_cells(), by="benchmark").set_index("benchmark")
    assert per_bench.loc["X", "n"] == 2
    assert per_bench.loc["X", "mae"] == pytest.approx(0.06)


def test_summarise_cells_by_extrapolation_distance():
    """With a ``distance`` column the report has one row per distance bin (bins hold their
    lower edge only from the second on: 0.4 is in "0-0.4"), with that bin's metrics."""
    from sloth_bayes.metrics import distance_bins

    assert list(distance_bins(pd.Series([0.0, 0.4, 0.41, 2.9, 3.5, np.nan]))) == [
        "0-0.4", "0-0.4", "0.4-0.8", "1.8-3", "3-inf", np.nan]
    cells = _cells().assign(distance=[0.1, 0.3, 1.0, 5.0])
    s = summarise_cells(cells)
    d = s[s["level"] == "distance"].set_index("key")
    assert list(d.index) == ["0-0.4", "0.8-1.2", "3-inf"]
    assert list(d["n"]) == [2, 1, 1]
    assert d.loc["0-0.4", "mae_points"] == pytest.approx((2 + 0) / 2)
    assert d.loc["3-inf", "mae_points"] == pytest.approx(10.0)
    assert "distance" not in set(summarise_cells(_cells())["level"])


def test_summarise_cells_minimal_columns():
    c = _cells()[["benchmark", "truth", "median"]]
    s = summarise_cells(c)
    assert s.loc[s["level"] == "pooled", "mae_points"].iloc[0] == pytest.approx(5.5)
    assert "coverage_90" not in s


def test_group_bootstrap_known_answers():
    """Resampling held-out groups: groups that score alike give an interval of width 0;
    two groups of which one covers every truth and the other none give the pooled 0.5 with
    an interval from 0 to 1 (a resample holds the first group twice with probability 1/4);
    the same seed gives the same interval."""
    from sloth_bayes.metrics import group_bootstrap

    def cells(groups, inside):
        truth = np.full(len(groups), 0.5)
        half = np.where(inside, 0.1, 0.01)  # interval around 0.55: holds 0.5 or not
        return pd.DataFrame({
            "group": groups, "truth": truth, "median": truth + 0.05,
            "lower_50": 0.55 - half, "upper_50": 0.55 + half,
            "lower_90": 0.55 - half, "upper_90": 0.55 + half,
        })

    same = group_bootstrap(cells(list("aabbcc"), [True, False] * 3)).set_index("metric")
    assert same.loc["coverage_90", "estimate"] == pytest.approx(0.5)
    assert same.loc["coverage_90", "lower"] == pytest.approx(0.5)
    assert same.loc["coverage_90", "upper"] == pytest.approx(0.5)
    assert same.loc["mae_points", "estimate"] == pytest.approx(5.0)
    assert same.loc["mae_points", "upper"] == pytest.approx(5.0)
    split = cells(["a"] * 10 + ["b"] * 10, [True] * 10 + [False] * 10)
    b = group_bootstrap(split).set_index("metric")
    assert b.loc["coverage_90", "estimate"] == pytest.approx(0.5)
    assert (b.loc["coverage_90", "lower"], b.loc["coverage_90", "upper"]) == (0.0, 1.0)
    assert b.loc["coverage_90", "groups"] == 2
    pd.testing.assert_frame_equal(group_bootstrap(split, seed=3), group_bootstrap(split, seed=3))
    per_set = group_bootstrap(pd.concat([split.assign(set="v1"), split.assign(set="v2")]))
    assert list(per_set["set"].unique()) == ["v1", "v2"]


def test_calibrated_hits_spread_like_a_binomial_for_independent_cells_and_wider_for_shared_ones():
    """Independent cells: a calibrated forecast covers a Binomial(C, p) count of them. Cells
    that share one draw (a family's efficiency moving every cell of it): the pooled coverage
    spreads far wider, with the same mean."""
    from sloth_bayes.metrics import calibrated_hits

    rng = np.random.default_rng(0)
    c = 200
    independent = calibrated_hits(rng.standard_normal((2000, c)), n_rep=2000, seed=1)
    shared = rng.standard_normal((2000, 1)) + 0.1 * rng.standard_normal((2000, c))
    together = calibrated_hits(shared, n_rep=2000, seed=1)
    for p, hits in independent.items():
        assert hits.mean() / c == pytest.approx(p, abs=0.01)
        assert hits.std() == pytest.approx(np.sqrt(c * p * (1 - p)), rel=0.15)
    assert together[0.5].mean() / c == pytest.approx(0.5, abs=0.03)
    assert together[0.5].std() > 5 * independent[0.5].std()
    # same seed, same replicates
    np.testing.assert_array_equal(calibrated_hits(shared, seed=3)[0.9], calibrated_hits(shared, seed=3)[0.9])


def test_calibrated_range_pools_replicate_r_of_every_fold():
    """Two folds, replicate r of each pooled: coverage (hits_a + hits_b) / (n_a + n_b)."""
    from sloth_bayes.metrics import calibrated_range

    reps = np.arange(5)
    ref = pd.concat([
        pd.DataFrame({"set": "v1", "group": "a", "replicate": reps, "n": 10, "hits_50": [5, 5, 5, 5, 5],
                      "hits_90": 9}),
        pd.DataFrame({"set": "v1", "group": "b", "replicate": reps, "n": 30, "hits_50": [0, 10, 15, 20, 30],
                      "hits_90": 27}),
    ])
    r = calibrated_range(ref, prob=1.0).set_index("metric")
    assert r.loc["coverage_50", "lower"] == pytest.approx(5 / 40)
    assert r.loc["coverage_50", "upper"] == pytest.approx(35 / 40)
    assert r.loc["coverage_90", "lower"] == r.loc["coverage_90", "upper"] == pytest.approx(0.9)
