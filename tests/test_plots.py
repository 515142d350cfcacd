"""Figures: each runs on the shared small simulated fit (or a synthetic backtest cell table)
and draws the expected artists; one figure is compared with a stored reference image.

Regenerate the reference after an intended change of the calibration figure with
``SLOTH_BAYES_UPDATE_BASELINES=1 pytest tests/test_plots.py -k baseline``.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import LineCollection, PathCollection, PolyCollection  # noqa: E402
from matplotlib.image import AxesImage  # noqa: E402
from matplotlib.testing.compare import compare_images  # noqa: E402

from sloth_bayes import plots  # noqa: E402
from sloth_bayes.forecast import encoding_of  # noqa: E402

BASELINES = Path(__file__).resolve().parent / "baseline_images"


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def synthetic_cells(n_per: int = 40) -> pd.DataFrame:
    """A deterministic backtest cell table (no random numbers): four benchmarks whose
    intervals are increasingly too narrow (PIT spread beyond uniform)."""
    from scipy.special import erfinv

    frames = []
    for j, bench in enumerate(["MMLU", "GSM8K", "ARC", "IFEval"]):
        u = (np.arange(n_per) + 0.5) / n_per
        pit = np.clip(0.5 + (u - 0.5) * (1.0 + 0.15 * j), 0.01, 0.99)
        median = 0.3 + 0.5 * u[::-1]
        sd = 0.04 + 0.02 * j
        truth = median + sd * np.sqrt(2.0) * erfinv(2 * pit - 1)
        frames.append(
            pd.DataFrame(
                {
                    "set": "v1",
                    "model": [f"m{i}" for i in range(n_per)],
                    "benchmark": bench,
                    "truth": truth,
                    "median": median,
                    "lower_50": median - 0.674 * sd,
                    "upper_50": median + 0.674 * sd,
                    "lower_90": median - 1.645 * sd,
                    "upper_90": median + 1.645 * sd,
                    "p_overestimate": 1 - pit,
                    "pit": pit,
                    "distance": np.linspace(-1.5, 1.5, n_per),
                    "abs_error": np.abs(truth - median),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def _of(ax, kind):
    return [c for c in ax.collections if isinstance(c, kind)]


def _family_with_most_llms(fit) -> str:
    fam = pd.Series(fit.idata_.constant_data["llm_family"].to_numpy().astype(str))
    return fam.value_counts().index[0]


# -- fit-level figures (shared simulated fit) --------------------------------------------------
def test_fan_chart(sim_fit, simulated):
    table, _ = simulated
    fam = _family_with_most_llms(sim_fit)
    bench = str(sim_fit.idata_.posterior["benchmark"].values[0])
    rows = table[table["Family2"] == fam].sort_values("#Params (B)")
    held = rows.iloc[[-1]].assign(Model="held-out-giant", **{"#Params (B)": rows["#Params (B)"].max() * 4})
    ax = plots.fan_chart(sim_fit, fam, bench, table=pd.concat([table, held], ignore_index=True))
    assert ax.get_xscale() == "log"
    assert len(_of(ax, PolyCollection)) == 2  # 50% and 90% bands
    assert any(len(line.get_xdata()) == 40 for line in ax.lines)  # the median curve
    floor = encoding_of(sim_fit.idata_).floor[0]
    assert any(np.allclose(line.get_ydata(), floor) for line in ax.lines)  # chance floor
    points = _of(ax, PathCollection)
    n_obs = int(rows[bench].notna().sum())
    assert [len(p.get_offsets()) for p in points] == [n_obs, 1]  # in the fit, held out
    # the band covers the held-out model's size
    band = _of(ax, PolyCollection)[0].get_paths()[0].vertices
    assert band[:, 0].max() >= held["#Params (B)"].iloc[0]


def test_fan_chart_overlay_new_subfamily_and_errors(sim_fit, simulated):
    table, _ = simulated
    enc = encoding_of(sim_fit.idata_)
    fams = enc.subfamilies[:2]
    fig, ax = plt.subplots()
    out = plots.fan_chart(sim_fit, fams[0], enc.benchmarks[0], overlay=[fams[1]], ax=ax, sizes=[1, 10, 100])
    assert out is ax
    assert len(_of(ax, PolyCollection)) == 4
    # a sub-family the fit never saw, in a known coarse family: drawn from its coarse family
    new = table.iloc[[0]].assign(Model="fresh-ft", Family2="fresh-ft")
    ax2 = plots.fan_chart(sim_fit, "fresh-ft", enc.benchmarks[0], table=new)
    assert len(_of(ax2, PolyCollection)) == 2
    with pytest.raises(ValueError, match="not in the fit"):
        plots.fan_chart(sim_fit, fams[0], "NoSuchBench")


def test_forecast_panel(sim_fit, simulated):
    table, _ = simulated
    q = table.groupby("Family2").head(1).head(3)
    fc = sim_fit.forecast(q, seed=0)
    benches = list(sim_fit.idata_.posterior["benchmark"].values)
    truth = q.melt(id_vars=["Model"], value_vars=benches, var_name="benchmark", value_name="truth")
    fc = fc.merge(truth.rename(columns={"Model": "model"}), on=["model", "benchmark"], how="left")
    ax = plots.forecast_panel(fc)
    n = len(fc)
    assert len(ax.get_yticks()) == n
    segs = _of(ax, LineCollection)
    assert [len(s.get_segments()) for s in segs] == [n, n]  # 90% and 50% intervals
    coloured = _of(ax, PathCollection)[0]
    # colour = p_overestimate; rows grouped by benchmark, then model
    order = fc.assign(_b=pd.Categorical(fc["benchmark"], categories=pd.unique(fc["benchmark"])))
    expect = order.sort_values(["_b"], kind="stable")["p_overestimate"]
    assert np.allclose(coloured.get_array(), expect)
    assert len(ax.figure.axes) == 2  # the colourbar
    one = plots.forecast_panel(fc, models=[fc["model"].iloc[0]], benchmarks=benches[:2])
    assert [t.get_text() for t in one.get_yticklabels()] == benches[:2]
    with pytest.raises(ValueError, match="nothing to plot"):
        plots.forecast_panel(fc, models=["nobody"])


def test_loadings_heatmap(sim_fit):
    ax = plots.loadings_heatmap(sim_fit)
    j = sim_fit.idata_.posterior.sizes["benchmark"]
    k = sim_fit.idata_.posterior.sizes["skill"]
    assert len([a for a in ax.get_images() if isinstance(a, AxesImage)]) == 1
    assert len(ax.texts) == j * k
    assert sum("fixed" in t.get_text() for t in ax.texts) == k * k  # the anchor block: pure anchors


def test_family_forest_and_instruct_shift(sim_fit):
    post = sim_fit.idata_.posterior
    ax = plots.family_forest(sim_fit.idata_, skill="skill_2")
    assert len(ax.get_yticks()) == post.sizes["family"]
    assert len(_of(ax, LineCollection)) == 2
    some = [str(f) for f in post["family"].values[:3]]
    ax = plots.family_forest(sim_fit, families=some, sort=False)
    assert {t.get_text() for t in ax.get_yticklabels()} == set(some)
    ax = plots.instruct_shift_plot(sim_fit)
    assert len(ax.get_yticks()) == post.sizes["skill"]
    assert sum(t.get_text().startswith("P(>0)") for t in ax.texts) == post.sizes["skill"]


def test_skill_trajectories(sim_fit):
    fams = [str(f) for f in sim_fit.idata_.posterior["family"].values[:2]]
    fig, axes = plots.skill_trajectories(sim_fit, fams)
    assert len(axes) == sim_fit.idata_.posterior.sizes["skill"]
    for ax in axes:
        assert len(_of(ax, PolyCollection)) == 2 and len(ax.lines) == 2
    fig, axes = plots.skill_trajectories(sim_fit, fams[:1], skills=[1])
    assert len(axes) == 1 and axes[0].get_ylabel() == "skill_2"
    with pytest.raises(ValueError, match="not in the fit"):
        plots.skill_trajectories(sim_fit, ["nope"])


def test_posterior_predictive_matches_forecast(sim_fit, simulated):
    """The cell-level replicates use the model exactly as forecast.py does for known LLMs."""
    table, _ = simulated
    tree = sim_fit.idata_
    pp = plots.posterior_predictive_cells(tree, seed=1)
    assert pp["y"].dims == ("chain", "draw", "cell")
    assert float(pp["y"].min()) >= 0.0 and float(pp["y"].max()) <= 1.0
    draws = sim_fit.predictive_draws(table, seed=1)
    cd = tree.constant_data
    mu_fc = draws["mu"].sel(
        model=xr_index(cd["cell_llm"].values), benchmark=xr_index(cd["cell_benchmark"].values)
    )
    mu_pp = pp["mu"].stack(sample=("chain", "draw")).transpose("sample", "cell").to_numpy()
    np.testing.assert_allclose(mu_pp, mu_fc.to_numpy(), rtol=1e-4, atol=1e-5)


def xr_index(values):
    import xarray as xr

    return xr.DataArray(np.asarray(values).astype(str), dims="cell")


def test_ppc_and_rank_plots(sim_fit):
    benches = [str(b) for b in sim_fit.idata_.posterior["benchmark"].values]
    fig, axes = plots.ppc_plot(sim_fit, benchmark=benches[:2], num_samples=10)
    assert len(axes) == 2
    assert all(len(ax.lines) >= 10 for ax in axes)  # replicates + observed
    with pytest.raises(ValueError, match="no observed cells"):
        plots.ppc_plot(sim_fit, benchmark="NoSuchBench")
    fig, axes = plots.rank_plot(sim_fit, ["instruct_shift"])
    assert len(axes) == sim_fit.idata_.posterior.sizes["skill"]
    assert all(len(ax.lines) >= 2 for ax in axes)  # one rank ECDF per chain


# -- backtest figures (synthetic cell table, no sampling) ---------------------------------------
def test_coverage_table_formula():
    cells = synthetic_cells()
    tab = plots.coverage_table(cells, probs=[0.5, 0.9])
    pit = cells["pit"].to_numpy()
    expect = [np.mean(np.abs(pit - 0.5) <= p / 2) for p in (0.5, 0.9)]
    np.testing.assert_allclose(tab["coverage"], expect)
    assert (tab["n"] == len(cells)).all()


def test_calibration_curve_artists():
    cells = synthetic_cells()
    ax = plots.calibration_curve(cells, by="benchmark")
    assert len(_of(ax, PolyCollection)) == 1  # binomial band
    labels = [line.get_label() for line in ax.lines]
    assert "all cells (PIT)" in labels and "reported intervals" in labels
    assert {"MMLU", "GSM8K", "ARC", "IFEval"} <= set(labels)
    main = next(line for line in ax.lines if line.get_label() == "all cells (PIT)")
    np.testing.assert_allclose(main.get_ydata(), plots.coverage_table(cells)["coverage"])


def test_pit_histogram_error_distance_benchmark_errors():
    cells = synthetic_cells()
    ax = plots.pit_histogram(cells, bins=10)
    assert len(ax.patches) == 10
    assert sum(p.get_height() for p in ax.patches) == len(cells)
    assert len(_of(ax, PolyCollection)) == 1
    with_nan = cells.assign(distance=np.where(np.arange(len(cells)) % 7 == 0, np.nan, cells["distance"]))
    ax = plots.error_vs_distance(with_nan)
    assert len(_of(ax, PathCollection)) == 1
    assert len(_of(ax, PathCollection)[0].get_offsets()) == with_nan["distance"].notna().sum()
    assert {"mean |error|", "mean 90% half-width"} <= {line.get_label() for line in ax.lines}
    ax = plots.benchmark_errors(cells)
    assert len(ax.patches) == cells["benchmark"].nunique()
    assert any("90% cov" in t.get_text() for t in ax.texts)


def test_cell_table_checks():
    with pytest.raises(ValueError, match="lacks column"):
        plots.calibration_curve(pd.DataFrame({"truth": [0.5]}))
    with pytest.raises(ValueError, match="distance"):
        plots.error_vs_distance(synthetic_cells().drop(columns="distance"))
    with pytest.raises(TypeError):
        plots.pit_histogram([0.1, 0.2])


def test_calibration_curve_matches_baseline(tmp_path):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.8, 4.6), layout="constrained")
    plots.calibration_curve(synthetic_cells(), ax=fig.add_subplot())
    actual = tmp_path / "calibration_curve.png"
    fig.savefig(actual, dpi=60)
    expected = BASELINES / "calibration_curve.png"
    if os.environ.get("SLOTH_BAYES_UPDATE_BASELINES") == "1":
        BASELINES.mkdir(exist_ok=True)
        expected.write_bytes(actual.read_bytes())
    assert expected.is_file(), f"missing {expected}; create it with SLOTH_BAYES_UPDATE_BASELINES=1"
    result = compare_images(str(expected), str(actual), tol=5)
    assert result is None, result


def test_no_show_no_global_state(sim_fit, monkeypatch):
    """Plot functions never call plt.show() and leave rcParams as they found them."""
    monkeypatch.setattr(plt, "show", lambda *a, **k: pytest.fail("plt.show() called"))
    before = dict(matplotlib.rcParams)
    cells = synthetic_cells()
    fam = str(sim_fit.idata_.posterior["family"].values[0])
    bench = str(sim_fit.idata_.posterior["benchmark"].values[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plots.fan_chart(sim_fit, fam, bench)
        plots.loadings_heatmap(sim_fit)
        plots.instruct_shift_plot(sim_fit)
        plots.rank_plot(sim_fit, "instruct_shift")
        plots.ppc_plot(sim_fit, bench, num_samples=5)
        for f in (plots.calibration_curve, plots.pit_histogram, plots.error_vs_distance, plots.benchmark_errors):
            f(cells)
    after = dict(matplotlib.rcParams)
    assert {k for k in before if before[k] != after[k]} == set()
