"""The estimator end to end: forecast contract, persistence, seeds, recovery, real data."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from sloth_bayes import FitFileError, NotFittedError, SlothBayes
from sloth_bayes.forecast import FORECAST_COLUMNS, KIND_NEW_FAMILY, KIND_NEW_SUB, KIND_OBSERVED

from conftest import QUICK

from sloth_bayes.model import ModelConfig


def _queries(table: pd.DataFrame) -> pd.DataFrame:
    """Three kinds of query: a known sub-family, a new sub-family, a new family."""
    known = table.iloc[[0]].copy()
    new_sub = known.assign(Model="brand-new-finetune", Family2="brand-new-finetune", Instruct=True)
    new_fam = known.assign(Model="alien-70b", Family="alien", Family2="alien", **{"#Params (B)": 70.0})
    return pd.concat([known, new_sub, new_fam], ignore_index=True)


def test_forecast_contract(sim_fit, simulated):
    table, _ = simulated
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fc = sim_fit.forecast(_queries(table), seed=1)
    assert any("never seen" in str(w.message) for w in caught)
    assert list(fc.columns[: len(FORECAST_COLUMNS)]) == list(FORECAST_COLUMNS)
    assert len(fc) == 3 * len(sim_fit.idata_.posterior["benchmark"])
    q = fc[["lower_90", "lower_50", "median", "upper_50", "upper_90"]].to_numpy()
    assert (np.diff(q, axis=1) >= 0).all()
    assert ((q >= 0) & (q <= 1)).all()
    assert fc["p_overestimate"].between(0, 1).all()
    kinds = fc.groupby("model", sort=False)["family_kind"].first().tolist()
    assert kinds == [KIND_OBSERVED, KIND_NEW_SUB, KIND_NEW_FAMILY]
    # less is known, wider intervals: new family > new sub-family > observed family (ten
    # of each new kind, same covariates: one draw of a heavy-tailed efficiency is noisy)
    known = table.iloc[[0]]
    many = pd.concat([known] + [known.assign(Model=f"ft-{i}", Family2=f"ft-{i}") for i in range(10)]
                     + [known.assign(Model=f"x-{i}", Family=f"x-{i}", Family2=f"x-{i}") for i in range(10)],
                     ignore_index=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wide = sim_fit.forecast(many, seed=1)
    width = (wide.upper_90 - wide.lower_90).groupby(wide.family_kind).mean()
    assert width[KIND_NEW_FAMILY] > width[KIND_NEW_SUB] > width[KIND_OBSERVED]
    # point: the classic point skills law fitted on the same table (the model's K, the fit's seed)
    from sloth_bayes.baselines import PointSkillsLaw

    benches = [str(b) for b in sim_fit.idata_.posterior["benchmark"].values]
    law = PointSkillsLaw(n_skills=sim_fit.config.n_skills, seed=0).fit(table, benches)
    expect = law.predict(_queries(table)).rename(columns={"prediction": "point"})
    both = fc[["model", "benchmark", "point"]].merge(expect, on=["model", "benchmark"], suffixes=("", "_law"))
    assert len(both) == len(fc)
    np.testing.assert_allclose(both["point"], both["point_law"], rtol=1e-10)
    basis = fc.groupby("model", sort=False)["point_basis"].first().tolist()
    assert basis == ["sub-family", "coarse family", "population"]


def test_save_load_roundtrip(sim_fit, simulated, tmp_path):
    table, _ = simulated
    path = sim_fit.save(tmp_path / "fit.nc")
    loaded = SlothBayes.load(path)
    q = _queries(table)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pd.testing.assert_frame_equal(sim_fit.forecast(q, seed=4), loaded.forecast(q, seed=4))
    # the file opens with plain xarray, without this package
    tree = xr.open_datatree(path, engine="h5netcdf")
    assert "posterior" in tree.children


def test_load_refuses_foreign_and_corrupt_files(tmp_path):
    foreign = tmp_path / "foreign.nc"
    xr.Dataset({"a": ("x", np.arange(3.0))}).to_netcdf(foreign, engine="h5netcdf")
    with pytest.raises(FitFileError, match="not a sloth_bayes fit"):
        SlothBayes.load(foreign)
    corrupt = tmp_path / "corrupt.nc"
    corrupt.write_bytes(b"\x89HDF\r\n\x1a\n" + b"garbage" * 50)
    with pytest.raises(FitFileError, match="not a readable netCDF"):
        SlothBayes.load(corrupt)


def test_not_fitted_raises():
    with pytest.raises(NotFittedError, match="fit"):
        SlothBayes().forecast(pd.DataFrame())


def test_same_seed_same_posterior(simulated, sim_fit):
    table, _ = simulated
    tiny = dict(chains=2, warmup=30, draws=30, svi_steps=100, svi_restarts=1)
    a = SlothBayes(2, **tiny).fit(table, seed=5, progress_bar=False)
    b = SlothBayes(2, **tiny).fit(table, seed=5, progress_bar=False)
    c = SlothBayes(2, **tiny).fit(table, seed=6, progress_bar=False)
    la, lb, lc = (m.idata_.posterior["loadings"].to_numpy() for m in (a, b, c))
    np.testing.assert_array_equal(la, lb)
    assert not np.array_equal(la, lc)


def _coverage(idata, truth: dict, names: list[str], prob=0.9) -> tuple[int, int]:
    inside = total = 0
    lo, hi = (1 - prob) / 2, 1 - (1 - prob) / 2
    for name in names:
        draws = idata.posterior[name].stack(sample=("chain", "draw")).to_numpy()
        true = np.asarray(truth[name])
        low, high = np.quantile(draws, lo, axis=-1), np.quantile(draws, hi, axis=-1)
        free = high > low  # fixed loadings (0 or 1) are not parameters
        inside += int(((true >= low) & (true <= high))[free].sum())
        total += int(free.sum())
    return inside, total


def test_parameter_recovery(sim_fit, simulated):
    """90% intervals of slopes, loadings and family effects hold ~90% of the true values.

    A correct sampler gives ~0.9 (tolerance for the few dozen, correlated parameters of one
    simulated table); intervals shrunk to a third of their width - what an over-confident
    (e.g. mean-field) posterior gives - fail the same check.
    """
    _, truth = simulated
    names = ["slopes", "loadings", "alpha"]
    inside, total = _coverage(sim_fit.idata_, truth, names)
    assert total > 30
    assert 0.75 <= inside / total <= 1.0, f"{inside}/{total} inside 90% intervals"

    shrunk = sim_fit.idata_.copy()
    for name in names:
        da = shrunk.posterior[name]
        mean = da.mean(("chain", "draw"))
        shrunk.posterior[name] = mean + (da - mean) / 3
    bad, total = _coverage(shrunk, truth, names)
    assert bad / total < 0.75


def test_real_fit_forecasts_a_family_from_its_smallest(real_fit):
    model, held_out = real_fit
    fc = model.forecast(held_out, seed=0)
    truth = held_out.melt(id_vars=["Model"], value_vars=list(model.idata_.posterior["benchmark"].values))
    merged = fc.merge(truth, left_on=["model", "benchmark"], right_on=["Model", "variable"]).dropna(
        subset=["value"]
    )
    assert len(merged) > 50
    mae = (merged["median"] - merged["value"]).abs().mean()
    inside = ((merged.value >= merged.lower_90) & (merged.value <= merged.upper_90)).mean()
    assert mae < 0.08, mae
    assert inside > 0.6, inside
    assert (fc.family_kind == KIND_OBSERVED).all()


def _tiny_table() -> pd.DataFrame:
    """Two coarse families; 'A' trained on one token count, its instruct 7B's count unknown."""
    return pd.DataFrame(
        {
            "Model": ["a-1b", "a-7b", "a-7b-it", "b-3b", "b-30b"],
            "Family": ["A", "A", "A", "B", "B"],
            "Family2": ["a", "a", "a-it", "b", "b"],
            "Instruct": [0, 0, 1, 0, 0],
            "#Params (B)": [1.0, 7.0, 7.0, 3.0, 30.0],
            "Pretraining Data Size (T)": [2.0, 2.0, np.nan, 1.0, 0.5],
            "MMLU": [0.3, 0.4, 0.45, 0.3, np.nan],
            "GSM8K": [0.05, 0.1, 0.2, 0.02, 0.3],
        }
    )


def test_unknown_tokens_of_a_same_size_sibling_centre_on_its_count():
    """An instruct model with an unknown count gets its base model's count as a tight prior
    (same family, same size); the slope deviations pivot on each family's mean covariates."""
    from sloth_bayes.data import validate_table
    from sloth_bayes.model import (
        SIBLING_TOKENS_SCALE,
        ModelConfig,
        _pivots,
        _ranges,
        encode,
        latent_tokens,
        make_encoding,
    )

    clean, meta = validate_table(_tiny_table())
    enc = make_encoding(clean, meta, ModelConfig(n_skills=2))  # the tiny table has 2 benchmarks
    size_z, tokens_z, missing, loc, scale = latent_tokens(clean, enc)
    assert list(missing) == [2]
    assert loc[0] == pytest.approx(tokens_z[1]) and scale[0] == SIBLING_TOKENS_SCALE
    t = tokens_z.copy()
    t[2] = tokens_z[1]
    x = np.stack([size_z, t, size_z * t], axis=-1)
    np.testing.assert_allclose(enc.coarse_x_centre["A"], x[:3].mean(0), atol=1e-12)
    np.testing.assert_allclose(enc.coarse_x_centre["B"], x[3:].mean(0), atol=1e-12)
    data = encode(clean, enc, 2)
    np.testing.assert_allclose(np.asarray(_pivots(data)), [x[:3].mean(0), x[3:].mean(0)], atol=1e-5)
    # the families' covariate ranges, in numpy (stored) and in the model (JAX)
    low, high = (np.asarray(e) for e in _ranges(data))
    np.testing.assert_allclose(low, [x[:3].min(0), x[3:].min(0)], atol=1e-5)
    np.testing.assert_allclose(high, [x[:3].max(0), x[3:].max(0)], atol=1e-5)
    np.testing.assert_allclose(enc.coarse_x_low["A"], x[:3].min(0), atol=1e-12)
    np.testing.assert_allclose(enc.coarse_x_high["B"], x[3:].max(0), atol=1e-12)
    # with family B's cells out of the likelihood its pivot is the population's (0), and
    # A's pivot only counts A's LLMs that stay in
    mask = np.asarray(data.obs_row) < 2
    piv = np.asarray(_pivots(data._replace(cell_mask=mask)))
    np.testing.assert_allclose(piv, [x[:2].mean(0), np.zeros(3)], atol=1e-5)
    low, high = (np.asarray(e) for e in _ranges(data._replace(cell_mask=mask)))
    np.testing.assert_allclose(low, [x[:2].min(0), np.zeros(3)], atol=1e-5)
    np.testing.assert_allclose(high, [x[:2].max(0), np.zeros(3)], atol=1e-5)


def test_unknown_tokens_of_one_family_and_size_share_one_latent():
    """A base model and its instruct version, both with unknown counts, get one latent count
    (same pretraining data); another size of the family gets its own. The per-LLM values
    (``tokens_latent``) are that shared draw, and a fit's tree labels the groups."""
    from numpyro import handlers

    from sloth_bayes.data import validate_table
    from sloth_bayes.inference import _tree_layout
    from sloth_bayes.model import ModelConfig, encode, make_encoding, skills_model

    table = _tiny_table()
    extra = pd.DataFrame(
        {
            "Model": ["b-30b-it", "b-70b"],
            "Family": ["B", "B"],
            "Family2": ["b-it", "b"],
            "Instruct": [1, 0],
            "#Params (B)": [30.0, 70.0],
            "Pretraining Data Size (T)": [np.nan, np.nan],
            "MMLU": [0.5, 0.6],
            "GSM8K": [0.3, 0.4],
        }
    )
    table = pd.concat([table, extra], ignore_index=True)
    table.loc[table["Model"] == "b-30b", "Pretraining Data Size (T)"] = np.nan
    clean, meta = validate_table(table)
    config = ModelConfig(n_skills=2)  # the tiny table has 2 benchmarks
    enc = make_encoding(clean, meta, config)
    data = encode(clean, enc, config.n_skills)
    missing = [enc.llms[i] for i in data.tokens_missing]
    assert missing == ["a-7b-it", "b-30b", "b-30b-it", "b-70b"]
    np.testing.assert_array_equal(data.tokens_group, [0, 1, 1, 2])
    assert len(data.tokens_prior_loc) == 3
    tr = handlers.trace(handlers.seed(skills_model, rng_seed=0)).get_trace(data, config)
    shared, per_llm = np.asarray(tr["tokens_shared"]["value"]), np.asarray(tr["tokens_latent"]["value"])
    np.testing.assert_array_equal(per_llm, shared[[0, 1, 1, 2]])
    coords, dims, _ = _tree_layout(data, enc, config)
    assert coords["tokens_group"] == ["a-7b-it", "b-30b+b-30b-it", "b-70b"]
    assert dims["tokens_shared"] == ["tokens_group"]


def _assert_forecast_is_the_models_own_mean(model, table):
    import jax
    from numpyro.handlers import substitute, trace

    from sloth_bayes.data import validate_table
    from sloth_bayes.forecast import encoding_of
    from sloth_bayes.model import encode, skills_model

    clean, _ = validate_table(table)
    enc = encoding_of(model.idata_)
    data = encode(clean, enc, model.config.n_skills)
    post = model.idata_.posterior.to_dataset().stack(sample=("chain", "draw")).transpose("sample", ...)
    deterministic = {"alpha", "alpha_coarse", "loadings", "tokens_latent"}
    sites = [v for v in post.data_vars if v not in deterministic]

    def cells(values):
        tr = trace(substitute(skills_model, values)).get_trace(data, model.config, y=data.y)
        return tr["y"]["fn"].loc, tr["y"]["fn"].scale

    mu_model, sd_model = jax.vmap(cells)({v: post[v].to_numpy() for v in sites})
    fc = model.predictive_draws(clean, seed=0)  # (S, N, J)
    np.testing.assert_allclose(fc["mu"].to_numpy()[:, data.obs_row, data.obs_col], np.asarray(mu_model), atol=2e-5)
    # and the noise around it (logit-scale noise per benchmark, per instruct flag when on)
    np.testing.assert_allclose(fc["sd"].to_numpy()[:, data.obs_row, data.obs_col], np.asarray(sd_model), rtol=1e-4)


def _assert_plotted_skills_are_the_forecasters(model, table):
    """The plots' skill-implied score of every observed cell (``posterior_predictive_cells``,
    built on ``plots.llm_skills``) is the forecaster's, draw by draw."""
    from sloth_bayes.data import validate_table
    from sloth_bayes.forecast import encoding_of
    from sloth_bayes.model import encode
    from sloth_bayes.plots import posterior_predictive_cells

    clean, _ = validate_table(table)
    data = encode(clean, encoding_of(model.idata_), model.config.n_skills)
    cells = posterior_predictive_cells(model, seed=0).stack(sample=("chain", "draw")).transpose("sample", ...)
    fc = model.predictive_draws(clean, seed=0)  # (S, N, J)
    for v, tol in (("mu", dict(atol=2e-5)), ("sd", dict(rtol=1e-4))):
        np.testing.assert_allclose(cells[v].to_numpy(), fc[v].to_numpy()[:, data.obs_row, data.obs_col], **tol)


def _assert_far_forecasts_follow_the_plotted_skill_curve(model, table, monkeypatch):
    """Beyond its family's fitted sizes, the forecaster's skills grow as the plots' skill
    curve (``plots._skill_curve``) says: the logit difference between two far queries of one
    sub-family is the curve's skill difference along the loadings, draw by draw. With the
    fit's deviations made linear on purpose the check fails (the tempering is exercised)."""
    from sloth_bayes import plots
    from sloth_bayes.forecast import encoding_of, flat_draws
    from sloth_bayes.model import standardise

    enc = encoding_of(model.idata_)
    fam = table[np.isfinite(table["Pretraining Data Size (T)"])].iloc[0]
    biggest = table.loc[table["Family2"] == fam["Family2"], "#Params (B)"].max()
    q = pd.DataFrame([fam, fam]).assign(Model=["far-1", "far-2"], **{"#Params (B)": [2 * biggest, 10 * biggest]})
    mu = model.predictive_draws(q, seed=0)["mu"].to_numpy().astype(float)  # (S, 2, J)
    floor = np.asarray(enc.floor)
    power = flat_draws(model.idata_, "link_power")[:, None, None]
    p = ((mu - floor) / (1 - floor)) ** (1 / power)  # the sigmoid of the logit: the link inverted
    with np.errstate(divide="ignore"):  # saturated cells (p = 0 or 1): masked out below
        logit_gap = np.log(p[:, 1] / (1 - p[:, 1])) - np.log(p[:, 0] / (1 - p[:, 0]))
    # float32 scores: compare the logits of cells unsaturated at both sizes only, (S, J)
    ok = ((p > 0.02) & (p < 0.98)).all(1)
    # (a guard that enough cells are compared: 46% of 180 with signed loadings at this seed)
    assert ok.mean() > 0.3, f"only {ok.mean():.0%} of the draws' cells are unsaturated"
    size_z, tokens_z = standardise(enc, q["#Params (B)"], q["Pretraining Data Size (T)"])
    lam = flat_draws(model.idata_, "loadings")  # (S, J, K)

    def curve_gap(tree):
        theta = plots._skill_curve(tree, str(fam["Family2"]), size_z, tokens_z, float(fam["Instruct"]))
        return np.einsum("sk,sjk->sj", theta[:, 1] - theta[:, 0], lam)

    np.testing.assert_allclose(logit_gap[ok], curve_gap(model.idata_)[ok], atol=2e-3)
    linear = model.idata_.copy()  # the same draws, deviations growing linearly far out
    linear.attrs["sloth_bayes_config"] = json.dumps(model.config.with_options(deviation_knee=None).to_dict())
    assert np.abs(logit_gap[ok] - curve_gap(linear)[ok]).max() > 0.01


def test_forecast_of_a_fitted_llm_is_the_models_own_mean(sim_fit, simulated):
    """For LLMs of the fit, the forecast's skill-implied score (``mu``) is, draw by draw, the
    mean the NumPyro model itself gives their observed cells: the forecaster rebuilds skills
    (slopes, slope deviations, instruct shifts, profiles) exactly as the model."""
    _assert_forecast_is_the_models_own_mean(sim_fit, simulated[0])
    _assert_plotted_skills_are_the_forecasters(sim_fit, simulated[0])


def test_forecast_is_the_models_own_mean_with_deviations_tempered_inside_the_sizes(simulated, monkeypatch):
    """The same with deviations that grow like a square root far from the family (a knee
    well inside the simulated sizes' range)."""
    from sloth_bayes import SlothBayes
    from sloth_bayes.model import ModelConfig

    config = ModelConfig(n_skills=2).with_options(deviation_knee=0.5)
    model = SlothBayes(config=config, chains=1, warmup=30, draws=30, svi_steps=100, svi_restarts=1)
    model.fit(simulated[0], seed=0, progress_bar=False)
    assert model.idata_.posterior.sizes["deviation_covariate"] == 2
    _assert_forecast_is_the_models_own_mean(model, simulated[0])
    _assert_plotted_skills_are_the_forecasters(model, simulated[0])
    _assert_far_forecasts_follow_the_plotted_skill_curve(model, simulated[0], monkeypatch)


def test_queries_of_one_unseen_family_share_its_draws(sim_fit, simulated):
    """What the fit never saw (a new family's efficiency, profile, slope deviations) is drawn
    once per family, not per query: two queries of one new family with the same covariates
    get identical skill-implied draws (drawn per query, they would differ)."""
    table, _ = simulated
    base = table.iloc[[0]].copy()
    twins = pd.concat([base.assign(Model=f"alien-7b-{i}", Family="alien", Family2="alien") for i in range(2)])
    big = base.assign(Model="alien-70b", Family="alien", Family2="alien", **{"#Params (B)": 70.0})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mu = sim_fit.predictive_draws(pd.concat([twins, big], ignore_index=True), seed=2)["mu"]
    np.testing.assert_array_equal(mu.isel(model=0).to_numpy(), mu.isel(model=1).to_numpy())
    assert float(mu.std("sample").isel(model=0).max()) > 0.01  # the family itself is uncertain


def test_a_learned_floor_is_recovered_and_forecast_as_the_model_has_it():
    """``floor_lift``: a table simulated with MMLU's floor lifted by 0.15 of its scale above
    chance (and MMLU hard, so many models sit near it) gives a posterior whose 90% interval
    of that lift holds 0.15 and not 0 (the chance level alone cannot be the floor), and
    whose forecasts and plotted cells use the learned floors draw by draw (they would not
    match the model's own means at the chance levels); GSM8K's floor is exact: with
    ``learned_floors=("choice", "rules")`` the choice benchmarks are lifted, GSM8K never."""
    from sloth_bayes import SlothBayes
    from sloth_bayes.simulate import simulate_table

    config = ModelConfig(n_skills=2, learned_floors=("choice", "rules"))
    lift = np.array([0.15, 0.0, 0.0, 0.0, 0.0])  # MMLU, ARC, HellaSwag, Winogrande, TruthfulQA
    table, truth = simulate_table(
        config=config, seed=5, params={"floor_lift_unfolded": lift, "difficulty": np.array([-3.0, 0, 0, 0, 0, 0])}
    )
    assert list(table.columns[-6:])[0] == "MMLU"
    model = SlothBayes(config=config, **QUICK).fit(table, seed=0, progress_bar=False)
    draws = model.idata_.posterior["floor_lift"].sel(benchmark="MMLU")
    low, high = np.quantile(draws, [0.05, 0.95])
    assert low > 0.05 and low <= 0.15 <= high, (low, high)
    # GSM8K's answers are free-form and must match: its floor stays at chance, exactly
    assert float(np.abs(model.idata_.posterior["floor_lift"].sel(benchmark="GSM8K")).max()) == 0.0
    _assert_forecast_is_the_models_own_mean(model, table)
    _assert_plotted_skills_are_the_forecasters(model, table)


def test_a_link_power_is_recovered_and_forecast_as_the_model_has_it():
    """``link_power``: a table simulated with scores that reach the floor 3 times faster
    than they approach the ceiling (``sigmoid ** 3``) gives a posterior whose 90% interval
    of the power holds 3 and not 1 (the logistic), and whose forecasts and plotted cells use
    the power draw by draw (they would not match the model's own means with the logistic)."""
    from sloth_bayes import SlothBayes
    from sloth_bayes.simulate import simulate_table

    config = ModelConfig(n_skills=2)
    table, truth = simulate_table(config=config, seed=5, params={"log_link_power": np.log(3.0)})
    model = SlothBayes(config=config, **QUICK).fit(table, seed=0, progress_bar=False)
    low, high = np.quantile(model.idata_.posterior["link_power"], [0.05, 0.95])
    assert 1.0 < low <= 3.0 <= high, (low, high)
    _assert_forecast_is_the_models_own_mean(model, table)
    _assert_plotted_skills_are_the_forecasters(model, table)


def test_the_fits_log_likelihood_is_each_cells_own_log_density(sim_fit, simulated):
    """``to_datatree`` builds the DataTree itself (not through ``az.from_numpyro``): each
    observed cell's log-likelihood is, draw by draw, the model's log density of that cell
    at that draw's parameters (chains, draws and cells not shuffled), and the sample stats
    hold what the diagnostics read, with ``lp`` the log density (not the potential)."""
    from numpyro.handlers import substitute, trace

    from sloth_bayes.data import validate_table
    from sloth_bayes.forecast import encoding_of
    from sloth_bayes.model import encode, skills_model

    table, _ = simulated
    clean, _ = validate_table(table)
    data = encode(clean, encoding_of(sim_fit.idata_), sim_fit.config.n_skills)
    tree = sim_fit.idata_
    deterministic = {"alpha", "alpha_coarse", "loadings", "tokens_latent"}
    ll = tree["log_likelihood"]["y"]
    assert ll.dims[:2] == ("chain", "draw") and ll.shape[2] == len(data.y)
    np.testing.assert_array_equal(tree["observed_data"]["y"].to_numpy(), np.asarray(data.y))
    for chain, draw in ((0, 3), (1, 140)):
        values = {
            v: tree.posterior[v].isel(chain=chain, draw=draw).to_numpy()
            for v in tree.posterior.data_vars if v not in deterministic
        }
        site = trace(substitute(skills_model, values)).get_trace(data, sim_fit.config, y=data.y)["y"]
        own = np.asarray(site["fn"].log_prob(site["value"]))
        np.testing.assert_allclose(ll.isel(chain=chain, draw=draw).to_numpy(), own, rtol=1e-5, atol=1e-5)
    stats = tree.sample_stats
    for name in ("diverging", "energy", "n_steps", "acceptance_rate", "lp", "tree_depth", "reached_max_tree_depth"):
        assert name in stats, name
    assert stats["lp"].shape == ll.shape[:2]
    # lp is a log density, not the potential (its negative): larger where the log-likelihood
    # is. On this small table the prior moves it too (correlation 0.47 since the folded
    # noise, above 0.5 before); the potential would read as far below 0.
    lp, total = stats["lp"].to_numpy().ravel(), ll.sum(ll.dims[2]).to_numpy().ravel()
    assert np.corrcoef(lp, total)[0, 1] > 0.3
    depth = stats["tree_depth"].to_numpy()
    np.testing.assert_array_equal(stats["reached_max_tree_depth"].to_numpy(), depth >= sim_fit.sampler.max_tree_depth)


def test_anchors_have_no_family_profile_entries_and_read_back_as_zeros(sim_fit):
    """The anchors carry no family profile: their entries are not sampled
    (a prior-only quantity would pass for an estimate in a summary and slow R-hat), and
    ``flat_draws`` puts the profile back on every benchmark with 0 at the anchors, as the
    forecaster reads it."""
    from sloth_bayes.forecast import encoding_of, flat_draws

    post = sim_fit.idata_.posterior
    anchors = encoding_of(sim_fit.idata_).anchors
    profiled = list(post["z_family_bench"].coords["profiled_benchmark"].values)
    benchmarks = list(post["benchmark"].values)
    assert profiled == [b for b in benchmarks if b not in anchors] and len(anchors) == 2
    z = flat_draws(sim_fit.idata_, "z_family_bench")  # (S, C, J)
    assert z.shape[-1] == len(benchmarks)
    cols = [benchmarks.index(a) for a in anchors]
    np.testing.assert_array_equal(z[..., cols], 0.0)
    np.testing.assert_array_equal(z[..., benchmarks.index(profiled[0])],
                                  post["z_family_bench"].sel(profiled_benchmark=profiled[0])
                                  .stack(sample=("chain", "draw")).transpose("sample", ...).values)

def test_a_new_family_draws_its_efficiency_from_the_models_population(sim_fit, simulated):
    """Forecasts run the model itself on the query rows: a family the fit never saw draws
    its standardised efficiency inside the model, Student-t with the fit's
    ``efficiency_df`` (KS test against scipy's), and its forecasts are far wider than
    those of a sub-family the fit saw (same covariates)."""
    import jax
    from numpyro import handlers
    from scipy.stats import kstest

    from sloth_bayes.model import skills_model
    from sloth_bayes.predictive import config_of, query_data

    table, _ = simulated
    fitted = table.iloc[[0]]
    alien = fitted.assign(Model="alien-7b", Family="alien", Family2="alien")
    data, _, kinds = query_data(sim_fit.idata_, pd.concat([fitted, alien], ignore_index=True))
    assert kinds == ["observed family", "new family"]
    config = config_of(sim_fit.idata_)

    def z_new(key):
        tr = handlers.trace(handlers.seed(skills_model, key)).get_trace(data, config)
        return tr["z_coarse_new"]["value"]

    z = np.asarray(jax.vmap(z_new)(jax.random.split(jax.random.PRNGKey(0), 3000)))
    assert z.shape[1:] == (1, config.n_skills)
    assert kstest(z.ravel(), "t", args=(config.priors.efficiency_df,)).pvalue > 0.01
    assert kstest(z.ravel(), "norm").pvalue < 1e-3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mu = sim_fit.predictive_draws(pd.concat([fitted, alien], ignore_index=True), seed=0)["mu"]
    spread = mu.std("sample").mean("benchmark").to_numpy()
    assert spread[1] > 2 * spread[0], spread


def test_variance_shares_are_known_for_independent_sources():
    """Known answer: the mean is A + B with independent A (efficiency, variance 4) and B
    (deviation, variance 1) plus noise of variance 1: removing A leaves B, removing B
    leaves A; the shares are 4/6, 1/6 and 1/6, the other sources 0."""
    from sloth_bayes.predictive import SOURCES, variance_shares

    rng = np.random.default_rng(0)
    a, b = 2.0 * rng.standard_normal((200_000, 3)), rng.standard_normal((200_000, 3))
    draws = {"mu": a + b, "sd": np.ones_like(a)}
    draws |= {f"mu_without_{name}": a + b for name in SOURCES}
    draws["mu_without_efficiency"] = b
    draws["mu_without_deviation"] = a
    shares = variance_shares(draws)
    np.testing.assert_allclose(shares["efficiency"], 4 / 6, atol=0.01)
    np.testing.assert_allclose(shares["deviation"], 1 / 6, atol=0.01)
    np.testing.assert_allclose(shares["noise"], 1 / 6, atol=0.01)
    np.testing.assert_allclose(sum(shares.values()), 1.0)
    assert np.all(shares["instruct"] == 0)


def test_forecasts_say_which_source_makes_them_uncertain(sim_fit, simulated):
    """An LLM of the fit is uncertain mostly through the observation noise; a family never
    seen mostly through the population of families; shares sum to one; the plot draws them."""
    import matplotlib

    matplotlib.use("Agg")
    from sloth_bayes import plots

    table, _ = simulated
    known = table.iloc[[0]]
    queries = pd.concat([known, known.assign(Model="x-1", Family="x", Family2="x")], ignore_index=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fc = sim_fit.forecast(queries, seed=0)
    shares = [c for c in fc.columns if c.startswith("share_")]
    assert set(shares) == {"share_efficiency", "share_deviation", "share_instruct", "share_shared_law", "share_noise"}
    np.testing.assert_allclose(fc[shares].sum(axis=1), 1.0, rtol=1e-6)
    main = fc.groupby("model")["main_source"].agg(lambda s: s.value_counts().idxmax())
    assert main[known["Model"].iloc[0]] == "noise"
    assert main["x-1"] == "population"
    ax = plots.uncertainty_sources(fc)
    assert len(ax.patches) == 2 * len(shares)
