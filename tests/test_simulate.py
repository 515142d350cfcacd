"""The simulators: tables drawn from the model's prior, and the shipped table drawn from the
posterior predictive of a fit to the embedded real table."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from sloth_bayes.data import META_COLUMNS, TOKENS, validate_table
from sloth_bayes.model import ModelConfig
from sloth_bayes.simulate import plausibility, simulate_from_fit, simulate_table, synthetic_design

BENCH = ["MMLU", "GSM8K", "ARC", "MATH Lvl 5"]


@pytest.fixture(scope="module")
def sim():
    return simulate_table(config=ModelConfig(n_skills=2), benchmarks=BENCH, seed=5, n_families=4)


def test_table_shape_and_values(sim):
    table, _ = sim
    assert list(table.columns) == list(META_COLUMNS) + BENCH
    scores = table[BENCH].to_numpy()
    observed = np.isfinite(scores)
    assert ((scores[observed] >= 0) & (scores[observed] <= 1)).all()
    assert not observed.all(), "some cells are missing"
    assert observed.any(axis=1).all(), "every LLM keeps an observed score"
    assert table[TOKENS].isna().any() and table[TOKENS].notna().any()
    assert table["Instruct"].any() and (~table["Instruct"]).any()
    assert table["#Params (B)"].between(0.1, 100).all()
    assert table["Model"].is_unique
    # sub-families nest in coarse families
    assert (table.groupby("Family2")["Family"].nunique() == 1).all()
    validate_table(table, BENCH)  # a valid training table


def test_truth_is_shaped_like_the_posterior(sim):
    table, truth = sim
    n_sub, n_coarse = table["Family2"].nunique(), table["Family"].nunique()
    assert truth["slopes"].shape == (3, 2)
    assert truth["alpha"].shape == (n_sub, 2)
    assert truth["alpha_coarse"].shape == (n_coarse, 2)
    assert truth["loadings"].shape == (len(BENCH), 2)
    assert truth["difficulty"].shape == (len(BENCH),)
    assert truth["tokens_latent"].shape == (int(table[TOKENS].isna().sum()),)
    assert "y" not in truth
    # pure anchors (the default): MMLU loads 1 on skill 1 and 0 on skill 2, GSM8K 0 and 1
    np.testing.assert_allclose(truth["loadings"][0], [1.0, 0.0])
    np.testing.assert_allclose(truth["loadings"][1], [0.0, 1.0])
    assert (truth["sigma_bench"] > 0).all()
    # the other loadings are drawn from their (signed) prior
    free = np.ones((len(BENCH), 2), bool)
    free[:2] = False
    assert np.isfinite(truth["loadings"][free]).all() and (truth["loadings"][free] != 0).all()


def test_template_design_is_kept(sim):
    template, _ = sim
    template = template.copy()
    template.loc[0, "ARC"] = np.nan  # a new hole: must be copied
    table, truth = simulate_table(template, ModelConfig(n_skills=1), seed=1)
    pd.testing.assert_frame_equal(table[list(META_COLUMNS)], template[list(META_COLUMNS)])
    assert (table[BENCH].isna().to_numpy() == template[BENCH].isna().to_numpy()).all()
    assert not np.allclose(table[BENCH].fillna(0).to_numpy(), template[BENCH].fillna(0).to_numpy())
    assert truth["loadings"].shape == (len(BENCH), 1)


def test_seeds_and_fixed_parameters():
    kw = dict(config=ModelConfig(n_skills=1), benchmarks=BENCH, n_families=2)
    a, ta = simulate_table(seed=11, **kw)
    b, _ = simulate_table(seed=11, **kw)
    pd.testing.assert_frame_equal(a, b)
    slopes = np.array([[1.5], [0.5], [0.0]])
    c, tc = simulate_table(seed=11, params={"slopes": slopes}, **kw)
    np.testing.assert_allclose(tc["slopes"], slopes)
    assert not np.allclose(ta["slopes"], slopes)


def test_synthetic_design():
    design = synthetic_design(6, benchmarks=BENCH, seed=2, missing_cells=0.3)
    assert design["Family"].nunique() == 6
    assert {"-instruct"} <= {s[s.rfind("-") :] for s in design["Family2"]}
    observed = design[BENCH].notna()
    assert observed.any(axis=1).all() and (observed.sum() >= 2).all()
    assert 0.1 < 1 - observed.to_numpy().mean() < 0.5


def test_a_design_reads_its_simulated_scores_as_exact():
    """``prepare_design`` puts placeholders (0.5) in the observed cells: on the 0.01 grid, but
    not a rounding of the scores it simulates, so its likelihood reads them as exact; the
    design of a real table keeps the steps of its rounded columns."""
    from sloth_bayes.simulate import encode_table, prepare_design

    table, _ = simulate_table(synthetic_design(seed=0), ModelConfig(n_skills=1), seed=1)
    bench = [c for c in table.columns if c not in META_COLUMNS]
    table[bench[0]] = table[bench[0]].round(2)
    assert np.all(prepare_design(table).data.step == 0)
    steps = encode_table(table).encoding.score_step
    assert steps[0] == 0.01 and steps[1:] == [0.0] * (len(bench) - 1)


# --- from a fit ------------------------------------------------------------------------------
def test_simulate_from_fit_keeps_the_design(sim_fit, simulated):
    table, _ = simulated
    design = table.copy()
    bench = [str(b) for b in sim_fit.idata_.posterior["benchmark"].values]
    design.loc[0, bench[0]] = np.nan  # a hole of the design stays a hole
    out, record = simulate_from_fit(sim_fit, design, seed=3)
    pd.testing.assert_frame_equal(out[list(META_COLUMNS)], design[list(META_COLUMNS)])
    assert (out[bench].isna().to_numpy() == design[bench].isna().to_numpy()).all()
    scores = out[bench].to_numpy()
    assert np.nanmin(scores) >= 0 and np.nanmax(scores) <= 1
    assert not np.allclose(np.nan_to_num(scores), np.nan_to_num(design[bench].to_numpy()))
    # the record is the posterior at the chosen draw, JSON-ready
    post = sim_fit.idata_.posterior
    slopes = post["slopes"].isel(chain=record["chain"], draw=record["draw"])
    np.testing.assert_allclose(record["parameters"]["slopes"]["values"], slopes.values)
    assert record["parameters"]["slopes"]["dims"] == list(slopes.dims)
    assert record["coords"]["benchmark"] == bench
    json.dumps(record)
    # reproducible; another seed draws again
    again, _ = simulate_from_fit(sim_fit, design, seed=3)
    pd.testing.assert_frame_equal(out, again)
    other, _ = simulate_from_fit(sim_fit, design, seed=4)
    assert not other[bench].equals(out[bench])
    with pytest.raises(ValueError, match="draw"):
        simulate_from_fit(sim_fit, design, draw=10**9)


def test_plausibility_reads_a_scaling_table():
    sizes = [1.0, 3.0, 7.0, 0.5, 40.0, 70.0]
    table = pd.DataFrame({
        "Model": list("abcdef"), "Family2": ["f"] * 3 + ["g"] * 3, "#Params (B)": sizes,
        "MMLU": [0.3, 0.4, 0.5, 0.2, 0.6, 0.7], "GSM8K": [0.2, 0.1, 0.0, 0.0, 0.0, 0.0],
    })
    checks = plausibility(table, ["MMLU", "GSM8K"]).set_index("benchmark")
    assert checks.loc["MMLU", "size_rank_corr"] == 1.0 and checks.loc["MMLU", "families"] == 2
    assert checks.loc["GSM8K", "size_rank_corr"] == -1.0  # g is constant: no correlation there
    assert checks.loc["MMLU", "mean_under_1b"] == pytest.approx(0.2)
    assert checks.loc["MMLU", "mean_over_30b"] == pytest.approx(0.65)


# --- the shipped simulated table -------------------------------------------------------------
@pytest.fixture(scope="module")
def shipped():
    from sloth_bayes.datasets import load_leaderboard, load_simulated, load_simulated_parameters

    return load_leaderboard(), load_simulated(), load_simulated_parameters()


def test_shipped_simulated_table_has_the_real_design(shipped):
    real, sim, record = shipped
    pd.testing.assert_frame_equal(sim[list(META_COLUMNS)], real[list(META_COLUMNS)])
    bench = record["benchmarks"]
    assert len(bench) == 12 and list(sim.columns) == list(META_COLUMNS) + bench
    assert (sim[bench].isna().to_numpy() == real[bench].isna().to_numpy()).all()
    validate_table(sim)
    assert "scripts/make_simulated.py" in record["command"]


def test_shipped_simulated_table_is_plausible(shipped):
    real, sim, _ = shipped
    checks = plausibility(sim).set_index("benchmark")
    # scores rise with size within families, on every benchmark
    assert (checks["size_rank_corr"] >= 0.4).all(), checks["size_rank_corr"]
    assert checks["size_rank_corr"].median() >= 0.8
    # small models sit at the floor of the hard benchmarks, large ones above it
    assert checks.loc["MATH Lvl 5", "mean_under_1b"] < 0.05
    assert checks.loc["GSM8K", "mean_under_1b"] < 0.05
    for b in ("MMLU", "ARC", "HellaSwag", "GSM8K", "BBH", "MMLU-PRO"):
        assert checks.loc[b, "mean_over_30b"] > checks.loc[b, "mean_under_1b"] + 0.1, b
    # and the table is close to the real one, benchmark by benchmark, without being a copy
    bench = list(checks.index)
    gap = (sim[bench] - real[bench]).abs().mean()
    assert (gap < 0.08).all() and (gap > 0).all(), gap


def test_shipped_parameters_match_their_dims(shipped):
    real, _, record = shipped
    coords, params = record["coords"], record["parameters"]
    assert coords["family"] == list(pd.unique(real["Family2"]))
    for name, p in params.items():
        shape = tuple(len(coords[d]) for d in p["dims"] if d in coords)
        if len(shape) == len(p["dims"]):
            assert np.shape(p["values"]) == shape, name
    assert np.shape(params["loadings"]["values"]) == (12, record["config"]["n_skills"])


@pytest.mark.slow
def test_a_default_fit_of_the_shipped_table_converges_and_recovers(shipped):
    """The shipped table is fitted by the default model as the real one is: it converges, and
    the parameters that generated it sit inside their posterior intervals."""
    from sloth_bayes import SlothBayes
    from sloth_bayes.diagnostics import convergence_report

    _, sim, record = shipped
    model = SlothBayes().fit(sim, seed=0, progress_bar=False)
    assert convergence_report(model.idata_).ok
    post = model.idata_.posterior
    inside = []
    for name in ("slopes", "difficulty", "instruct_shift", "sigma_coarse", "link_power"):
        truth = np.asarray(record["parameters"][name]["values"])
        lo = post[name].quantile(0.005, ("chain", "draw")).values
        hi = post[name].quantile(0.995, ("chain", "draw")).values
        inside.append(((truth >= lo) & (truth <= hi)).ravel())
    assert np.concatenate(inside).mean() >= 0.9
