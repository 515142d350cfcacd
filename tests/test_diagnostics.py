"""Diagnostics on synthetic posteriors with known answers, and LOO on a real small fit."""

from __future__ import annotations

import json

import arviz as az
import numpy as np
import pandas as pd
import pytest

from sloth_bayes.cli import main
from sloth_bayes.diagnostics import (
    compare,
    convergence_report,
    loadings_table,
    loo,
    loo_pit,
    skill_correlation,
    summary_table,
    varimax_rotation,
)
from sloth_bayes.io import FORMAT, save_fit
from sloth_bayes.model import ModelConfig

BENCH = ["MMLU", "ARC", "GSM8K", "HellaSwag"]
FAMS = ["a", "a-instruct", "b"]
SKILLS = ["skill_1", "skill_2"]


def synthetic_fit(
    *,
    chains=2,
    draws=1000,
    seed=0,
    stuck=False,
    divergences=0,
    energy_walk=False,
    alpha=None,
    loadings=None,
    n_cells=10,
    extra=None,
):
    """A fit-shaped DataTree with iid normal draws (well mixed) unless told otherwise.

    ``stuck``: chain 1 sits in another mode (parameters shifted by 3 sds, log density 40
    lower), as two chains that found different skill solutions.
    """
    rng = np.random.default_rng(seed)
    shape = (chains, draws)

    def normal(*dims, loc=0.0):
        x = rng.normal(loc, 1.0, size=shape + dims)
        if stuck:
            x[1] += 3.0
        return x

    if loadings is None:
        loadings = np.abs(normal(len(BENCH), 2)) + 0.1
        loadings[:, :, 0, :] = [1.0, 0.0]  # anchor of skill 1 (fixed: no parameter)
        loadings[:, :, 2, 1] = 1.0  # anchor of skill 2
    lp = rng.normal(-100.0, 3.0, size=shape)
    energy = rng.normal(size=shape)
    if energy_walk:  # strongly autocorrelated energies: low E-BFMI
        energy = np.cumsum(energy, axis=1)
    if stuck:
        lp[1] -= 40.0
    diverging = np.zeros(shape, bool)
    diverging.flat[rng.choice(diverging.size, size=divergences, replace=False)] = True
    post = {
        "slopes": normal(3, 2),
        "alpha": normal(len(FAMS), 2) if alpha is None else alpha,
        "alpha_coarse": normal(2, 2),
        "loadings": loadings,
        "difficulty": normal(len(BENCH)),
        "sigma_bench": np.abs(normal(len(BENCH))),
        "z_sub": normal(len(FAMS), 2),
        **(extra or {}),
    }
    idata = az.from_dict(
        {
            "posterior": post,
            "sample_stats": {
                "diverging": diverging,
                "energy": energy,
                "lp": lp,
                "reached_max_tree_depth": np.zeros(shape, bool),
                "tree_depth": np.full(shape, 4),
            },
            "log_likelihood": {"y": rng.normal(-1.0, 0.1, size=shape + (n_cells,))},
            "observed_data": {"y": rng.uniform(size=n_cells)},
            "constant_data": {
                "cell_llm": np.array([f"llm{i}" for i in range(n_cells)]),
                "cell_benchmark": np.array([BENCH[i % 4] for i in range(n_cells)]),
            },
        },
        coords={
            "covariate": ["log_size", "log_tokens", "log_size_x_log_tokens"],
            "skill": SKILLS,
            "family": FAMS,
            "coarse_family": ["a", "b"],
            "benchmark": BENCH,
            "cell": np.arange(n_cells),
        },
        dims={
            "slopes": ["covariate", "skill"],
            "alpha": ["family", "skill"],
            "alpha_coarse": ["coarse_family", "skill"],
            "loadings": ["benchmark", "skill"],
            "difficulty": ["benchmark"],
            "sigma_bench": ["benchmark"],
            "z_sub": ["family", "skill"],
            "y": ["cell"],
            "cell_llm": ["cell"],
            "cell_benchmark": ["cell"],
        },
    )
    idata.attrs.update(
        {
            "sloth_bayes_format": FORMAT,
            "sloth_bayes_config": json.dumps(ModelConfig(n_skills=2).to_dict()),
            "sloth_bayes_encoding": json.dumps({"benchmarks": BENCH}),
        }
    )
    return idata


# --- convergence ---------------------------------------------------------------------------------
def test_well_mixed_chains_pass():
    report = convergence_report(synthetic_fit())
    assert report.ok, report.text()
    assert report.warnings == []
    assert report.max_rhat < 1.01
    assert report.min_ess_bulk > 400 and report.min_ess_tail > 400
    assert report.divergences == 0 and not report.chains_disagree
    assert len(report.bfmi) == 2 and min(report.bfmi) > 0.3
    # fixed anchor loadings (nan R-hat) are not parameters: 8 entries, 3 fixed
    assert report.groups.loc["loadings", "size"] == 5
    assert np.isfinite(report.groups["max_rhat"]).all()
    assert "Converged" in report.text()
    frame = report.to_frame()
    assert frame["ok"].all() and {"value", "threshold"} <= set(frame.columns)


def test_the_sign_of_folded_loadings_is_not_a_convergence_failure():
    """Folded loadings are ``|x|``: each chain may keep its own sign of ``x``, which no
    likelihood sees. The report checks ``loadings``, not ``x``."""
    x = np.abs(np.random.default_rng(5).normal(2.0, 0.1, size=(2, 1000, 5)))
    x[1] *= -1.0  # chain 2 on the other sign
    report = convergence_report(synthetic_fit(extra={"loadings_unfolded": x}))
    assert report.ok, report.text()
    assert "loadings_unfolded" not in report.groups.index


def test_chains_in_different_modes_are_flagged():
    report = convergence_report(synthetic_fit(stuck=True))
    assert not report.ok
    assert report.max_rhat > 1.5
    assert report.chains_disagree
    assert report.lp_chain_means[0] - report.lp_chain_means[1] == pytest.approx(40, abs=1)
    text = " ".join(report.warnings)
    assert "R-hat" in text and "different" in text and "anchors" in text
    assert not report.to_frame().loc["max_rhat", "ok"]


def test_divergences_counted_and_advised():
    report = convergence_report(synthetic_fit(divergences=7))
    assert report.divergences == 7
    assert not report.ok
    assert any("7 divergent" in w and "target_accept" in w for w in report.warnings)


def test_low_bfmi_warns():
    report = convergence_report(synthetic_fit(energy_walk=True))
    assert min(report.bfmi) < 0.3
    assert not report.ok
    assert any("E-BFMI" in w for w in report.warnings)


def test_short_chains_fail_ess():
    report = convergence_report(synthetic_fit(draws=100))
    assert report.min_ess_bulk < 400
    assert not report.ok
    assert any("Bulk ESS" in w and "draws" in w for w in report.warnings)


def test_summary_table_states_the_interval():
    table = summary_table(synthetic_fit(), prob=0.9)
    assert {"eti90_lb", "eti90_ub", "r_hat", "ess_bulk"} <= set(table.columns)
    assert not any(i.startswith("z_") for i in table.index)  # offsets left out
    lb = table.loc["slopes[log_size, skill_1]", "eti90_lb"]
    assert lb == pytest.approx(-1.645, abs=0.15)


# --- command line --------------------------------------------------------------------------------
def test_diagnose_exit_codes(tmp_path, capsys):
    good = save_fit(synthetic_fit(), tmp_path / "good.nc")
    bad = save_fit(synthetic_fit(stuck=True), tmp_path / "bad.nc")
    out = tmp_path / "summary.csv"
    assert main(["diagnose", str(good), "--out", str(out)]) == 0
    assert "Converged" in capsys.readouterr().out
    assert "eti90_lb" in pd.read_csv(out, index_col=0).columns
    assert main(["diagnose", str(bad)]) == 1
    assert "NOT converged" in capsys.readouterr().out
    (tmp_path / "foreign.nc").write_bytes(b"not a netcdf file")
    assert main(["diagnose", str(tmp_path / "foreign.nc")]) == 2


def test_compare_cli_on_synthetic_fits(tmp_path, capsys):
    a = save_fit(synthetic_fit(seed=1), tmp_path / "a.nc")
    b = save_fit(synthetic_fit(seed=2), tmp_path / "b.nc")
    assert main(["compare", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert "elpd" in out and "a" in out and "b" in out
    other = save_fit(synthetic_fit(seed=3, n_cells=12), tmp_path / "other_table.nc")
    assert main(["compare", str(a), str(other)]) == 2
    assert "same table" in capsys.readouterr().err


# --- skills --------------------------------------------------------------------------------------
def test_loadings_table_marks_fixed_entries():
    table = loadings_table(synthetic_fit(), prob=0.9)
    assert list(table.columns) == ["benchmark", "skill", "mean", "lower_90", "upper_90", "fixed"]
    assert len(table) == 8 and table["fixed"].sum() == 3
    assert (table["lower_90"] <= table["mean"]).all() and (table["mean"] <= table["upper_90"]).all()


def test_varimax_recovers_simple_structure_aligned_across_draws():
    rng = np.random.default_rng(0)
    simple = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.8]])
    chains, draws = 2, 50
    lam = np.empty((chains, draws, 4, 2))
    for c in range(chains):
        for d in range(draws):
            t = rng.uniform(0, 2 * np.pi)
            rot = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
            lam[c, d] = (simple + 0.01 * rng.normal(size=simple.shape)) @ rot
    rotated = varimax_rotation(synthetic_fit(chains=chains, draws=draws, loadings=lam))
    assert rotated.dims == ("chain", "draw", "benchmark", "skill")
    mean = rotated.mean(("chain", "draw")).values
    # up to the order and sign of the columns, the simple structure comes back ...
    match = max(np.abs(mean - simple).max(), np.abs(mean[:, ::-1] - simple).max())
    match = min(match, np.abs(np.abs(mean) - simple).max(), np.abs(np.abs(mean[:, ::-1]) - simple).max())
    assert match < 0.05
    # ... and every draw is aligned with it (no sign or order flips between draws)
    assert float(rotated.std(("chain", "draw")).max()) < 0.05


def test_skill_correlation():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(2, 200, len(FAMS), 1))
    same = np.concatenate([base, 2 * base + 0.01 * rng.normal(size=base.shape)], -1)
    corr = skill_correlation(synthetic_fit(draws=200, alpha=same))
    assert list(corr.columns) == ["skill_a", "skill_b", "mean", "lower_90", "upper_90"]
    assert corr.loc[0, "mean"] > 0.99


# --- LOO-PIT: the simulated fit's own noise model is calibrated by construction --------------
@pytest.mark.slow  # the shared quick fit puts 0.58-0.59 of its cells in the central 50%: at the bound
def test_loo_pit_is_uniform_on_the_models_own_data(sim_fit):
    idata = sim_fit.idata_
    table = loo_pit(idata, seed=0)
    n_cells = idata["log_likelihood"].sizes["cell"]
    assert len(table) == n_cells
    assert table["pit"].between(0, 1).all() and table["pareto_k"].notna().all()
    observed = table.set_index(["llm", "benchmark"])["observed"]
    cd = idata["constant_data"]
    first = (str(cd["cell_llm"].values[0]), str(cd["cell_benchmark"].values[0]))
    assert observed.loc[first] == pytest.approx(float(idata["observed_data"]["y"].values[0]))
    # data simulated from the model: central intervals hold their nominal share of cells
    # (binomial sd ~0.02 at these counts; a misaligned or unweighted PIT misses by far more)
    for p in (0.5, 0.9):
        share = float(((table["pit"] - 0.5).abs() <= p / 2).mean())
        assert share == pytest.approx(p, abs=0.08), (p, share)
    pd.testing.assert_frame_equal(table, loo_pit(idata, seed=0))  # same seed, same table

    # every score 0.15 higher than the fit expects: PITs pile up at 1
    shifted = idata.copy()
    shifted["observed_data"]["y"] = (idata["observed_data"]["y"] + 0.15).clip(0, 1)
    high = loo_pit(shifted, seed=0)
    assert ((high["pit"] - 0.5).abs() <= 0.25).mean() < 0.3
    assert (high["pit"] > 0.5).mean() > 0.85


# --- LOO on a real small fit (the session's shared simulated fit) --------------------------------
def test_loo_and_compare_on_real_fit(sim_fit):
    idata = sim_fit.idata_
    res = loo(idata)
    n_cells = idata["log_likelihood"].sizes["cell"]
    assert np.isfinite(res.elpd_loo) and res.se > 0 and res.p_loo > 0
    assert len(res.pareto_k) == n_cells
    assert set(res.pareto_k["llm"]) <= set(map(str, idata["constant_data"]["llm"].values))
    bad = (res.pareto_k["pareto_k"] > res.elpd.good_k).sum()
    assert (bad > 0) == any("Pareto k" in w for w in res.warnings)
    assert "elpd_loo" in res.text()

    # a model that predicts every cell worse must rank second
    worse = idata.copy()
    worse["log_likelihood"]["y"] = idata["log_likelihood"]["y"] - 1.0
    frame = compare({"fit": idata, "worse": worse})
    assert list(frame.index) == ["fit", "worse"]
    assert frame.loc["worse", "elpd_diff"] == pytest.approx(-n_cells, rel=0.05)
    assert isinstance(frame.attrs["warnings"], list)

    report = convergence_report(idata)
    assert report.n_chains == idata["posterior"].sizes["chain"]
    assert report.groups.index.isin(["slopes", "loadings", "alpha"]).sum() == 3
    assert "loadings_free" not in report.groups.index
