"""Simulation-based calibration: the rank statistics, and real SBC runs on a tiny design.

The default suite runs a few replications on a tiny table with a reduced model (one skill,
no slope deviations, no per-LLM residual, chains started without SVI) so that one
compilation serves both the correct and the deliberately broken prior; the ``slow`` test
runs the package's full scheme (SVI starts, full model) with more replications.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from sloth_bayes import sbc as sbc_module
from sloth_bayes.cli import main
from sloth_bayes.model import ModelConfig
from sloth_bayes.sbc import (
    SBC_SAMPLER,
    CompiledFitter,
    SBCResult,
    plot_ranks,
    rank_statistics,
    run_sbc,
    uniformity_tests,
)
from sloth_bayes.simulate import prepare_design

TINY = ModelConfig(n_skills=1, slope_deviations=False)
TINY_SAMPLER = replace(SBC_SAMPLER, warmup=100, draws=100, svi_restarts=0)
#: Fitted with slope prior sd 0.05 while the simulator draws slopes with sd 1.
BROKEN = TINY.with_options(slope=0.05)


# --- rank statistics and tests, with known answers (no fitting) ----------------------------------
def test_rank_statistics_extremes_and_thinning():
    rng = np.random.default_rng(0)
    draws = rng.normal(size=(2, 500, 3))
    ranks = rank_statistics(np.array([10.0, -10.0, 0.0]), draws, n_draws=99)
    assert ranks.shape == (3,)
    assert ranks[0] == 99 and ranks[1] == 0 and 20 < ranks[2] < 80
    # ties (e.g. a fixed entry) are broken at random, so ranks stay in 0..L
    tied = rank_statistics(np.array(1.0), np.ones((2, 50)), n_draws=None, rng=rng)
    assert 0 <= tied <= 100


def _conjugate_ranks(reps: int, shrink: float, seed: int = 0) -> pd.DataFrame:
    """theta ~ N(0, 1), y ~ N(theta, 1): exact posterior N(y/2, 1/2); ``shrink`` < 1 narrows it."""
    rng = np.random.default_rng(seed)
    rows = []
    for r in range(reps):
        theta = rng.normal(size=4)
        y = theta + rng.normal(size=4)
        post = y / 2 + shrink * np.sqrt(0.5) * rng.normal(size=(1, 99, 4))
        ranks = rank_statistics(theta, post, n_draws=99, rng=rng)
        u = (ranks + rng.random(4)) / 100
        rows += [
            {"rep": r, "group": "theta", "parameter": f"theta[{i}]", "rank": ranks[i], "u": u[i]}
            for i in range(4)
        ]
    return pd.DataFrame(rows)


def test_uniformity_tests_know_right_from_wrong():
    good = uniformity_tests(_conjugate_ranks(200, 1.0), n_draws=99)
    assert good.loc["theta", "n_ranks"] == 800 and good.loc["theta", "n_scalars"] == 4
    assert good.loc["theta", "p"] > 0.01 and good.loc["theta", "p_chi2"] > 0.01
    narrow = uniformity_tests(_conjugate_ranks(200, 1 / 3), n_draws=99)
    assert narrow.loc["theta", "p_spread"] < 1e-6 and narrow.loc["theta", "p_chi2"] < 1e-6


def _fake_result(n_draws=99, seed=0) -> SBCResult:
    ranks = _conjugate_ranks(30, 1.0, seed)
    ranks = pd.concat([ranks, ranks.assign(group="other")], ignore_index=True)
    fits = pd.DataFrame({"rep": range(30), "divergences": 0, "max_rhat": 1.0, "seconds": 1.0})
    return SBCResult(ranks, uniformity_tests(ranks, n_draws), fits, n_draws, {"reps": 30})


def test_plot_ranks_returns_figure():
    fig, axes = plot_ranks(_fake_result())
    visible = [ax for ax in axes.flat if ax.get_visible()]
    assert len(visible) == 2 and "theta" in visible[0].get_title()


def test_cli_writes_outputs(tmp_path, monkeypatch, capsys):
    calls = {}

    def fake_run(reps, **kwargs):
        calls.update(kwargs, reps=reps)
        return _fake_result()

    monkeypatch.setattr(sbc_module, "run_sbc", fake_run)
    code = main(
        ["sbc", "--reps", "3", "--out", str(tmp_path), "--seed", "4", "--broken-slope-scale", "0.05"]
    )
    assert code == 0
    assert calls["reps"] == 3 and calls["seed"] == 4 and calls["prior_override"].priors.slope == 0.05
    for name in ("sbc_ranks.csv", "sbc_tests.csv", "sbc_fits.csv", "sbc_ranks.png", "sbc_settings.json"):
        assert (tmp_path / name).is_file()
    assert "not rejected" in capsys.readouterr().out


# --- real SBC on a tiny design (one compilation for both runs) ------------------------------------
@pytest.fixture(scope="module")
def tiny():
    design = prepare_design(
        None, TINY, seed=0, n_families=2, benchmarks=["MMLU", "ARC", "GSM8K", "HellaSwag"]
    )
    return design, CompiledFitter(design, TINY, TINY_SAMPLER)


def test_sbc_does_not_reject_the_correct_model(tiny):
    design, fitter = tiny
    # 8 replications: with 4, one scalar's 4 ranks decide its spread test alone (a model whose
    # gradient changed in the last bits once drew sigma_sub's 4 ranks at p = 9e-5)
    result = run_sbc(8, config=TINY, sampler=TINY_SAMPLER, design=design, fitter=fitter, seed=0)
    assert not result.rejected(), result.text()
    assert set(result.tests.index) >= {"slopes", "loadings_free", "difficulty", "sigma_bench", "alpha"}
    assert result.ranks["rank"].between(0, result.n_draws).all()
    assert len(result.fits) == 8 and result.n_draws == 99
    assert (
        result.ranks.query("group == 'slopes' and rep == 0")["parameter"].iloc[0]
        == "slopes[log_size, skill_1]"
    )


def test_sbc_rejects_a_wrong_prior(tiny):
    """Simulated with slope sd 1, fitted with slope sd 0.05: posteriors of the slopes are
    pulled to zero, the true slopes rank at the extremes (a U shape) and SBC must say so."""
    design, fitter = tiny
    result = run_sbc(
        4, config=TINY, prior_override=BROKEN, sampler=TINY_SAMPLER, design=design, fitter=fitter, seed=0
    )
    assert result.rejected(), result.text()
    assert result.tests.loc["slopes", "p"] < 0.01 / len(result.tests)
    assert result.settings["fit_config"]["priors"]["slope"] == 0.05


def test_fitter_refuses_another_structure(tiny):
    _, fitter = tiny
    with pytest.raises(ValueError, match="structure"):
        fitter.scales(replace(TINY, n_skills=2))


@pytest.mark.slow
def test_sbc_full_scheme_is_calibrated():
    """The package's scheme (SVI starts, full one-skill model) on a small synthetic design."""
    config = ModelConfig(n_skills=1)
    design = prepare_design(None, config, seed=1, n_families=3)
    fitter = CompiledFitter(design, config, SBC_SAMPLER)
    result = run_sbc(20, config=config, design=design, fitter=fitter, seed=1)
    assert not result.rejected(), result.text()
    broken = run_sbc(
        8,
        config=config,
        prior_override=config.with_options(slope=0.05),
        design=design,
        fitter=fitter,
        seed=1,
    )
    assert broken.rejected(), broken.text()
