"""Over- or under-estimated: probabilities against ``point`` and any reference, the stored
point law, and the scores of the signal on backtest cells. No sampling: synthetic draws and
a fit whose posterior is a placeholder (its predictive draws are patched)."""

from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import xarray as xr  # noqa: E402

from sloth_bayes.baselines import PointSkillsLaw  # noqa: E402
from sloth_bayes.forecast import FORECAST_COLUMNS, summarise  # noqa: E402
from sloth_bayes.metrics import auc, reliability  # noqa: E402
from sloth_bayes.overestimate import (  # noqa: E402
    guidance_table,
    parse_reference,
    prob_above,
    read_backtests,
    reliability_diagram,
    resolve_reference,
    signal_scores,
    write_guidance,
)

from test_baselines import BENCH, _skills_table  # noqa: E402


# -- scores of a probability, by hand -----------------------------------------------------------
def test_auc_known_answers():
    # positives 0.35, 0.8 against negatives 0.1, 0.4: 3 of 4 pairs ordered
    assert auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == pytest.approx(0.75)
    # a tie counts one half: (0.5 vs 0.5 -> 1/2) + (0.5 vs 0.2 -> 1) over 2 pairs
    assert auc([0.5, 0.5, 0.2], [1, 0, 0]) == pytest.approx(0.75)
    assert auc([0.9, 0.8, 0.1], [0, 0, 1]) == pytest.approx(0.0)
    assert np.isnan(auc([0.2, 0.3], [1, 1]))  # one class only
    assert auc([0.1, np.nan, 0.9], [0, 1, 1]) == pytest.approx(1.0)  # NaN left out


def test_brier_and_ece_known_answers():
    p = [0.05, 0.05, 0.95, 0.95, 0.55]
    o = [0, 1, 1, 1, 0]
    rel = reliability(p, o)
    # bins [0, 0.1): predicted 0.05, observed 0.5; [0.5, 0.6): 0.55 vs 0; [0.9, 1]: 0.95 vs 1
    assert rel.calibration_error == pytest.approx((2 * 0.45 + 0.55 + 2 * 0.05) / 5)
    assert rel.brier == pytest.approx((0.05**2 + 0.95**2 + 2 * 0.05**2 + 0.55**2) / 5)
    # the auc by pairs: positives (0.05, 0.95, 0.95) x negatives (0.05, 0.55):
    # 0.05: tie (1/2) + below (0); 0.95: 1 + 1, twice -> (0.5 + 4) / 6
    assert rel.auc == pytest.approx(4.5 / 6)
    assert list(rel.table["n"]) == [2, 1, 2]
    # 1.0 falls in the last bin, 0.1 in the second
    rel = reliability([1.0, 0.1], [1, 0])
    assert list(rel.table["bin_lower"]) == pytest.approx([0.1, 0.9])


# -- probabilities from draws ----------------------------------------------------------------------
def _draws(point=None, n=100, seed=0):
    """Two models x two benchmarks whose draws are the grid (k + 0.5) / n in shuffled order:
    P(y < r) = round(n r) / n exactly for r off the grid."""
    rng = np.random.default_rng(seed)
    grid = (np.arange(n) + 0.5) / n
    y = np.stack([rng.permutation(grid) for _ in range(4)], axis=-1).reshape(n, 2, 2)
    data = {"y": (("sample", "model", "benchmark"), y), "mu": (("sample", "model", "benchmark"), y),
            "kind": (("model",), np.array(["observed family", "new family"]))}
    if point is not None:
        data["point"] = (("model", "benchmark"), np.asarray(point, dtype=float))
        data["point_basis"] = (("model",), np.array(["sub-family", "population"]))
    return xr.Dataset(data, coords={"model": ["a", "b"], "benchmark": ["MMLU", "GSM8K"]})


def _queries():
    return pd.DataFrame({"Model": ["a", "b"], "Family": ["f", "g"], "Family2": ["f", "g"],
                         "Instruct": [False, True], "#Params (B)": [7.0, 70.0],
                         "claim": [0.25, 0.9], "claim_gsm8k": [0.61, np.nan]})


def test_p_overestimate_is_the_share_of_draws_below_point():
    fc = summarise(_draws([[0.3, 0.72], [0.05, np.nan]]), _queries())
    assert list(fc.columns[: len(FORECAST_COLUMNS)]) == list(FORECAST_COLUMNS)
    assert "plugin" not in fc
    got = fc.set_index(["model", "benchmark"])
    assert got.loc[("a", "MMLU"), "p_overestimate"] == pytest.approx(0.30)
    assert got.loc[("a", "GSM8K"), "p_overestimate"] == pytest.approx(0.72)
    assert got.loc[("b", "MMLU"), "p_overestimate"] == pytest.approx(0.05)
    assert np.isnan(got.loc[("b", "GSM8K"), "p_overestimate"])  # no point, no probability
    assert got.loc[("a", "GSM8K"), "point"] == pytest.approx(0.72)
    assert list(fc["point_basis"]) == ["sub-family", "sub-family", "population", "population"]
    # draws without a point: the columns are there, NaN
    bare = summarise(_draws())
    assert bare["point"].isna().all() and bare["p_overestimate"].isna().all()


def test_any_reference_column_number_or_mapping():
    draws, q = _draws([[0.3, 0.72], [0.05, 0.5]]), _queries()
    col = summarise(draws, q, reference="claim").set_index(["model", "benchmark"])
    assert col.loc[("a", "GSM8K"), "reference"] == 0.25          # one value per model
    assert col.loc[("a", "GSM8K"), "p_below_reference"] == pytest.approx(0.25)
    assert col.loc[("b", "MMLU"), "p_below_reference"] == pytest.approx(0.90)
    num = summarise(draws, q, reference=0.418)
    assert num["p_below_reference"].to_numpy() == pytest.approx([0.42] * 4)
    mixed = summarise(draws, q, reference={"GSM8K": "claim_gsm8k", "MMLU": 0.123}).set_index(["model", "benchmark"])
    assert mixed.loc[("a", "GSM8K"), "p_below_reference"] == pytest.approx(0.61)
    assert np.isnan(mixed.loc[("b", "GSM8K"), "p_below_reference"])  # NaN claim: none
    assert mixed.loc[("b", "MMLU"), "p_below_reference"] == pytest.approx(0.12)
    with pytest.raises(ValueError, match="not in the query table"):
        summarise(draws, q, reference="nope")
    with pytest.raises(ValueError, match="does not forecast"):
        summarise(draws, q, reference={"HumanEval": 0.5})
    with pytest.raises(ValueError, match="needs the query table"):
        summarise(draws, None, reference="claim")
    with pytest.raises(ValueError, match="shape"):
        resolve_reference(np.zeros((3, 2)), q, ["a", "b"], ["MMLU", "GSM8K"])


def test_prob_above_for_decisions():
    out = prob_above(_draws(), {"MMLU": 0.8}, _queries())
    assert list(out.columns) == ["model", "benchmark", "threshold", "p_above"]
    assert list(out["benchmark"]) == ["MMLU", "MMLU"]  # only cells with a threshold
    assert out["p_above"].to_numpy() == pytest.approx([0.2, 0.2])
    both = prob_above(_draws(), 0.333)
    assert len(both) == 4 and both["p_above"].to_numpy() == pytest.approx([0.67] * 4)


def test_parse_reference_for_the_command_line():
    assert parse_reference("claim") == "claim"
    assert parse_reference("0.8") == 0.8
    assert parse_reference("MMLU=0.80, GSM8K=claim_gsm8k") == {"MMLU": 0.8, "GSM8K": "claim_gsm8k"}
    with pytest.raises(ValueError):
        parse_reference("MMLU=")
    with pytest.raises(ValueError):
        parse_reference(" ")


# -- the point law stored in a fit ---------------------------------------------------------------
@pytest.fixture(scope="module")
def placeholder_fit():
    """A SlothBayes whose 'posterior' is a placeholder, with its point law fitted for real."""
    from sloth_bayes import SlothBayes
    from sloth_bayes.data import validate_table
    from sloth_bayes.model import make_encoding

    table = _skills_table()
    model = SlothBayes(2)
    clean, meta = validate_table(table, BENCH)
    enc = make_encoding(clean, meta, model.config)
    post = xr.Dataset({v: (("chain", "draw"), np.zeros((1, 2))) for v in
                       ("slopes", "alpha", "alpha_coarse", "loadings", "difficulty", "sigma_bench")})
    model._set_fit(xr.DataTree.from_dict({"posterior": post}), enc, {}, 5)
    return model.fit_point(table), table


def _new_queries(table):
    base = table[table["Family2"] == "fam0"].iloc[[1]]
    return pd.concat([
        table.iloc[[0, 7]],
        base.assign(Model="new-sub", Family2="fam0-community"),
        base.assign(Model="new-fam", Family="alien", Family2="alien"),
    ], ignore_index=True)


def _patched_draws(model, queries, seed=0):
    benches = [str(b) for b in json.loads(model.idata_.attrs["sloth_bayes_encoding"])["benchmarks"]]
    rng = np.random.default_rng(seed)
    y = rng.uniform(size=(50, len(queries), len(benches)))
    return xr.Dataset({"y": (("sample", "model", "benchmark"), y), "mu": (("sample", "model", "benchmark"), y),
                       "kind": (("model",), np.array(["observed family"] * len(queries)))},
                      coords={"model": queries["Model"].astype(str).to_numpy(), "benchmark": benches})


def test_point_is_the_point_skills_law_fitted_on_the_same_table(placeholder_fit, monkeypatch):
    import sloth_bayes.estimator as est

    model, table = placeholder_fit
    monkeypatch.setattr(est, "predictive_draws", lambda idata, q, seed=0, **kw: _patched_draws(model, q, seed))
    q = _new_queries(table)
    fc = model.forecast(q)
    law = PointSkillsLaw(n_skills=2, seed=5).fit(table, BENCH)  # the model's K, the fit's seed
    expect = law.predict(q).rename(columns={"prediction": "point"})
    got = fc[["model", "benchmark", "point"]].merge(expect, on=["model", "benchmark"], suffixes=("", "_law"))
    assert len(got) == len(q) * len(BENCH)
    np.testing.assert_allclose(got["point"], got["point_law"], rtol=1e-12)
    basis = fc.groupby("model", sort=False)["point_basis"].first()
    assert list(basis) == ["sub-family", "sub-family", "coarse family", "population"]
    # p_overestimate is the share of the (patched) draws below point
    y = _patched_draws(model, q)["y"].to_numpy()
    pt = fc["point"].to_numpy().reshape(len(q), len(BENCH))
    np.testing.assert_allclose(fc["p_overestimate"], (y < pt).mean(0).ravel())
    # prob_above through the estimator
    pa = model.prob_above(q, {"MMLU": 0.5})
    np.testing.assert_allclose(pa["p_above"], (y[:, :, BENCH.index("MMLU")] > 0.5).mean(0))


def test_save_load_keeps_point(placeholder_fit, tmp_path, monkeypatch):
    import sloth_bayes.estimator as est
    from sloth_bayes import SlothBayes

    model, table = placeholder_fit
    path = model.save(tmp_path / "fit.nc")
    back = SlothBayes.load(path)
    monkeypatch.setattr(est, "predictive_draws", lambda idata, q, seed=0, **kw: _patched_draws(model, q, seed))
    q = _new_queries(table)
    a, b = model.forecast(q), back.forecast(q)
    pd.testing.assert_frame_equal(a, b)
    assert back.point_law_.params_["alpha"].tolist() == model.point_law_.params_["alpha"].tolist()
    # one self-contained, versioned attribute: readable without this package
    record = json.loads(xr.open_datatree(path, engine="h5netcdf").attrs["sloth_bayes_point"])
    assert record["format"] == PointSkillsLaw.FORMAT


def test_a_fit_without_point_law_warns_and_gives_nan(placeholder_fit, monkeypatch):
    import copy

    import sloth_bayes.estimator as est

    model, table = placeholder_fit
    bare = copy.copy(model)
    bare.idata_ = model.idata_.copy(deep=True)
    del bare.idata_.attrs["sloth_bayes_point"]
    monkeypatch.setattr(est, "predictive_draws", lambda idata, q, seed=0, **kw: _patched_draws(model, q, seed))
    with pytest.warns(UserWarning, match="no reference point law"):
        fc = bare.forecast(_new_queries(table))
    assert fc["point"].isna().all() and fc["p_overestimate"].isna().all()


# -- guidance and signal scores on hand-made cells ---------------------------------------------------
def _cells():
    """Eight cells of two protocols; errors chosen so every rate and mean is exact."""
    return pd.DataFrame({
        "protocol": ["lofo-1"] * 4 + ["future"] * 4,
        "set": ["v1", "v1", "v2", "v2", "all", "all", "all", "all"],
        "model": list("abcdefgh"),
        "benchmark": ["MMLU", "GSM8K", "MMLU", "GSM8K", "MMLU", "MMLU", "GSM8K", "GSM8K"],
        "truth": [0.50, 0.50, 0.50, 0.50, 0.40, 0.40, 0.40, 0.40],
        "point": [0.60, 0.45, 0.70, 0.52, 0.30, 0.50, 0.38, 0.39],   # over: T F T T | F T F F
        "median": [0.55, 0.49, 0.48, 0.50, 0.45, 0.35, 0.42, 0.40],  # over: T F F F | T F T F
        "p_overestimate": [0.9, 0.2, 0.8, 0.7, 0.1, 0.6, 0.3, 0.35],
        "distance": [0.2, 0.5, 0.51, 1.2, 2.0, np.nan, -0.3, 1.5],
        "n_observed": [1, 1, 2, 4, 0, 0, 7, 1],
        "instruct": [False, True, False, True, True, True, False, False],
        "family_kind": ["observed family"] * 4 + ["new sub-family", "new family", "observed family", "observed family"],
        "release": ["2023-05", "2023-11", "2022-07", np.nan, "2024-02", "2024-05", "2024-02", "2024-02"],
    })


def test_guidance_table_by_scenario():
    g = guidance_table(_cells())
    assert list(pd.unique(g["protocol"])) == ["lofo-1", "future", "pooled"]
    row = g[(g["protocol"] == "lofo-1") & (g["scenario"] == "all")].iloc[0]
    assert row["n"] == 4
    assert row["over_rate_point"] == pytest.approx(0.75)
    assert row["bias_point_points"] == pytest.approx(100 * (0.10 - 0.05 + 0.20 + 0.02) / 4)
    assert row["over_rate_median"] == pytest.approx(0.25)
    assert row["bias_median_points"] == pytest.approx(100 * (0.05 - 0.01 - 0.02 + 0.0) / 4)
    assert row["p_over_mean"] == pytest.approx(0.65)
    pooled = g[(g["protocol"] == "pooled") & (g["scenario"] == "distance")].set_index("key")
    # 0.5 belongs to 0-0.5 (interpolation, -0.3, too), 1.5 to 1-1.5; no observed model last
    assert list(pooled.index) == ["0-0.5", "0.5-1", "1-1.5", "1.5+", "none observed"]
    assert list(pooled["n"]) == [3, 1, 2, 1, 1]
    assert pooled.loc["0-0.5", "over_rate_point"] == pytest.approx(1 / 3)   # a, b, g: T F F
    assert pooled.loc["1-1.5", "bias_point_points"] == pytest.approx(100 * (0.02 - 0.01) / 2)
    obs = g[(g["protocol"] == "pooled") & (g["scenario"] == "observed models")].set_index("key")
    assert list(obs.index) == ["0", "1", "2", "3-5", "6+"] and list(obs["n"]) == [2, 3, 1, 1, 1]
    post = g[(g["protocol"] == "future") & (g["scenario"] == "post-training")].set_index("key")
    assert post.loc["instruct", "over_rate_point"] == pytest.approx(0.5)   # e F, f T
    assert post.loc["base", "over_rate_median"] == pytest.approx(0.5)     # g T, h F
    rel = g[(g["protocol"] == "pooled") & (g["scenario"] == "release")].set_index("key")
    assert list(rel.index) == ["2022", "2023", "2024", "unknown"] and list(rel["n"]) == [1, 2, 4, 1]
    kinds = g[(g["protocol"] == "future") & (g["scenario"] == "family kind")].set_index("key")
    assert kinds.loc["observed family", "n"] == 2
    # cells without the scenario columns: only what they allow
    small = guidance_table(_cells()[["truth", "point", "median", "benchmark"]])
    assert set(small["scenario"]) == {"all", "benchmark"} and "protocol" not in small


def test_signal_scores_per_protocol_and_pooled():
    s = signal_scores(_cells())
    assert list(zip(s["protocol"], s["set"])) == [
        ("lofo-1", "all sets"), ("lofo-1", "v1"), ("lofo-1", "v2"), ("future", "all sets"), ("pooled", "all sets"),
        ("pooled", "v1"), ("pooled", "v2"), ("pooled", "all")]
    lofo = s.iloc[0]
    # point over in a, c, d (p 0.9, 0.8, 0.7) and not in b (p 0.2): perfectly ranked
    assert lofo["auc"] == pytest.approx(1.0)
    assert lofo["brier"] == pytest.approx((0.01 + 0.04 + 0.04 + 0.09) / 4)
    assert lofo["over_rate_point"] == pytest.approx(0.75) and lofo["over_rate_median"] == pytest.approx(0.25)
    fut = s.iloc[3]
    # over only in f (0.6) against e, g, h (0.1, 0.3, 0.35)
    assert fut["auc"] == pytest.approx(1.0)
    pooled = s.iloc[4]
    # over a c d f: 0.9 0.8 0.7 0.6; not b e g h: 0.2 0.1 0.3 0.35 -> perfectly ranked too
    assert pooled["auc"] == pytest.approx(1.0) and pooled["n"] == 8
    # ECE: bins 0.1 (e: 0 vs 0.1), 0.2 (b), 0.3 (g, h: 0.325 vs 0), 0.6 (f: 1), 0.7 (d), 0.8 (c), 0.9 (a)
    expect = (0.1 + 0.2 + 2 * 0.325 + 0.4 + 0.3 + 0.2 + 0.1) / 8
    assert pooled["ece"] == pytest.approx(expect)


def test_reliability_diagram_and_guidance_files(tmp_path):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    out = reliability_diagram(_cells(), ax=ax)
    assert out is ax
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert len(labels) == 3 and labels[0].startswith("lofo-1: AUC 1.00") and labels[2].startswith("all cells")
    plt.close(fig)
    folders = []
    for proto, block in _cells().groupby("protocol", sort=False):
        d = tmp_path / proto
        d.mkdir()
        block.drop(columns=["protocol"]).to_csv(d / "cells.csv", index=False)  # protocol from the folder
        folders.append(d)
    assert set(read_backtests(folders)["protocol"]) == {"lofo-1", "future"}
    written = write_guidance(folders, tmp_path / "guidance.md", figure=tmp_path / "rel.png")
    assert [p.name for p in written] == ["guidance.md", "rel.png"]
    md = (tmp_path / "guidance.md").read_text()
    assert "Does `p_overestimate` tell the direction?" in md and "### By distance" in md
    assert (tmp_path / "rel.png").read_bytes()[:4] == b"\x89PNG"
