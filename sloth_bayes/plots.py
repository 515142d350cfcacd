"""Figures of a fit, its forecasts and its calibration (matplotlib only).

Every function takes ``ax=`` (or draws a new figure when it is ``None``) and returns the
Axes, or ``(Figure, array of Axes)`` when it needs several panels. Nothing here calls
``plt.show()`` or changes global ``rcParams``.

Fit-level figures accept a fitted :class:`~sloth_bayes.SlothBayes` or its DataTree
(``model.idata_``); backtest figures take a *cell table*: one row per scored cell with
columns ``benchmark``, ``truth``, ``median``, ``lower_50``, ``upper_50``, ``lower_90``,
``upper_90``, ``p_overestimate``, ``pit`` (and ``distance``, ``abs_error`` for
:func:`error_vs_distance`).

>>> from sloth_bayes import plots
>>> ax = plots.fan_chart(model, "qwen1.5", "MMLU", table=table)       # doctest: +SKIP
>>> ax = plots.forecast_panel(model.forecast(queries))                  # doctest: +SKIP
>>> ax = plots.calibration_curve(cells)                                 # doctest: +SKIP
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.colors import Normalize

from .data import FAMILY, INSTRUCT, MODEL, SIZE, SUBFAMILY, TOKENS
from .forecast import predictive_draws
from .predictive import encoding_of, fit_table, model_draws, query_data
from .predictive import flat_draws as _draws

__all__ = [
    "benchmark_errors",
    "calibration_curve",
    "coverage_table",
    "error_vs_distance",
    "family_forest",
    "fan_chart",
    "forecast_panel",
    "uncertainty_sources",
    "instruct_shift_plot",
    "llm_skills",
    "loadings_heatmap",
    "pit_histogram",
    "posterior_predictive_cells",
    "ppc_plot",
    "rank_plot",
    "skill_trajectories",
]

#: Nominal probabilities of the calibration curve.
NOMINAL = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)
CELL_COLUMNS = ("benchmark", "truth", "median", "lower_50", "upper_50", "lower_90", "upper_90", "pit")


# -- small helpers ---------------------------------------------------------------------------
def _ax(ax, figsize=(6.4, 4.2)):
    if ax is None:
        _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


def _tree(obj) -> xr.DataTree:
    """The DataTree of a fitted SlothBayes, or the DataTree itself."""
    if isinstance(obj, xr.DataTree):
        return obj
    if hasattr(obj, "_check_fitted"):
        obj._check_fitted()
        return obj.idata_
    raise TypeError(f"expected a fitted SlothBayes or its DataTree (idata_), got {type(obj).__name__}")


def _interval(x: np.ndarray, prob: float, axis: int = 0):
    lo, med, hi = np.quantile(x, [(1 - prob) / 2, 0.5, (1 + prob) / 2], axis=axis)
    return lo, med, hi


def _check_cells(cells: pd.DataFrame, columns: Sequence[str], what: str = "cell table") -> pd.DataFrame:
    if not isinstance(cells, pd.DataFrame):
        raise TypeError(f"expected a DataFrame ({what}), got {type(cells).__name__}")
    missing = [c for c in columns if c not in cells.columns]
    if missing:
        hint = (
            f"a backtest cell table has one row per scored cell with {', '.join(CELL_COLUMNS)}"
            if what == "cell table"
            else "pass the DataFrame returned by SlothBayes.forecast"
        )
        raise ValueError(f"the {what} lacks column(s) {', '.join(missing)}; {hint}")
    return cells


def _skill_names(tree, skills) -> list[str]:
    names = [str(s) for s in tree.posterior["skill"].values]
    if skills is None:
        return names
    if isinstance(skills, str | int | np.integer):
        skills = [skills]
    out = []
    for s in skills:
        if isinstance(s, int | np.integer):
            out.append(names[int(s)])
        elif str(s) in names:
            out.append(str(s))
        else:
            raise ValueError(f"unknown skill {s!r}; the fit has {', '.join(names)}")
    return out


def _destandardise_size(enc, size_z):
    return np.exp(np.asarray(size_z, float) * enc.size_scale + enc.size_loc)


def _family_llms(tree, family: str) -> np.ndarray:
    """Indices (in the fit's ``llm`` axis) of the LLMs of a sub-family."""
    fam = tree.constant_data["llm_family"].to_numpy().astype(str)
    return np.flatnonzero(fam == family)


def _family_profile(tree, family: str, table: pd.DataFrame | None):
    """(coarse family, instruct flag, typical tokens in T or NaN, sizes in B) of a sub-family,
    from the fit and, where given, the table."""
    enc = encoding_of(tree)
    cd = tree.constant_data
    idx = _family_llms(tree, family)
    sizes = list(_destandardise_size(enc, cd["llm_size_z"].to_numpy()[idx]))
    tz = cd["llm_tokens_z"].to_numpy()[idx]
    tokens = list(np.exp(tz[np.isfinite(tz)] * enc.tokens_scale + enc.tokens_loc))
    instruct = list(cd["llm_instruct"].to_numpy()[idx] > 0.5)
    coarse = None
    if family in enc.subfamilies:
        coarse = enc.coarse[enc.sub_coarse[enc.subfamilies.index(family)]]
    if table is not None and SUBFAMILY in table.columns:
        rows = table[table[SUBFAMILY].astype(str) == family]
        if len(rows):
            sizes += list(pd.to_numeric(rows[SIZE], errors="coerce").dropna())
            if TOKENS in rows:
                tokens += list(pd.to_numeric(rows[TOKENS], errors="coerce").dropna())
            if not len(idx) and INSTRUCT in rows:
                instruct = [str(v).strip().lower() in ("true", "1") for v in rows[INSTRUCT]]
            if coarse is None and FAMILY in rows:
                coarse = str(rows[FAMILY].iloc[0])
    if coarse is None:
        coarse = family
    flag = bool(np.mean(instruct) > 0.5) if instruct else False
    typical = float(np.median(tokens)) if tokens else np.nan
    return coarse, flag, typical, np.array(sizes, float)


def _observed_cells(tree, family: str, benchmark: str) -> pd.DataFrame:
    """In-fit observed scores of a sub-family on one benchmark: columns model, size, score."""
    enc = encoding_of(tree)
    cd = tree.constant_data
    llm_of_cell = cd["cell_llm"].to_numpy().astype(str)
    bench_of_cell = cd["cell_benchmark"].to_numpy().astype(str)
    llms = np.asarray(enc.llms)
    sizes = dict(zip(llms, _destandardise_size(enc, cd["llm_size_z"].to_numpy())))
    fam = dict(zip(llms, cd["llm_family"].to_numpy().astype(str)))
    keep = (bench_of_cell == benchmark) & np.array([fam[m] == family for m in llm_of_cell])
    y = tree.observed_data["y"].to_numpy()[keep]
    names = llm_of_cell[keep]
    return pd.DataFrame({"model": names, "size": [sizes[m] for m in names], "score": y})


# -- forecasts -------------------------------------------------------------------------------
def fan_chart(
    model,
    family: str,
    benchmark: str,
    *,
    table: pd.DataFrame | None = None,
    sizes: Sequence[float] | None = None,
    tokens: float | None = None,
    instruct: bool | None = None,
    overlay: Sequence[str] = (),
    n_grid: int = 40,
    seed: int = 0,
    ax=None,
):
    """Forecast fan of a sub-family: score against model size (log axis).

    The posterior predictive median and central 50% / 90% bands over a grid of sizes, at
    the family's typical pre-training tokens; the family's scores in the fit as filled
    points, scores of ``table`` that the fit did not see (held-out models) as open points;
    the benchmark's chance floor as a dotted line.

    Parameters
    ----------
    model : fitted SlothBayes (or its DataTree).
    family : sub-family (``Family2``); a name the fit never saw is forecast from its coarse
        family (taken from ``table``) or, failing that, as a new family.
    benchmark : a benchmark of the fit.
    table : optional leaderboard table; its rows of ``family`` add points (e.g. the truths of
        held-out models) and set the size range, tokens and instruct flag.
    sizes : sizes (B) of the grid; default spans the family's sizes (and at least up to 70B).
    tokens, instruct : override the family's typical tokens (T) and instruct flag.
    overlay : more sub-families drawn on the same axes, each in its own colour.
    n_grid : number of grid sizes. seed : seed of the predictive draws.

    Returns
    -------
    matplotlib.axes.Axes
    """
    tree = _tree(model)
    enc = encoding_of(tree)
    if benchmark not in enc.benchmarks:
        raise ValueError(f"benchmark {benchmark!r} is not in the fit ({', '.join(enc.benchmarks)})")
    ax = _ax(ax)
    families = [family, *[f for f in overlay if f != family]]
    in_fit = set(enc.llms)
    for i, fam in enumerate(families):
        colour = f"C{i % 10}"
        coarse, flag, typical, fam_sizes = _family_profile(tree, fam, table)
        if instruct is not None:
            flag = bool(instruct)
        if tokens is not None:
            typical = float(tokens)
        if sizes is not None:
            grid = np.sort(np.asarray(sizes, float))
        else:
            lo = fam_sizes.min() / 2 if len(fam_sizes) else 0.5
            hi = max(fam_sizes.max() * 2 if len(fam_sizes) else 0.0, 70.0)
            grid = np.geomspace(lo, hi, n_grid)
        queries = pd.DataFrame(
            {
                MODEL: [f"__grid__{fam}__{k}" for k in range(len(grid))],
                FAMILY: coarse,
                SUBFAMILY: fam,
                INSTRUCT: flag,
                SIZE: grid,
                TOKENS: typical,
            }
        )
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*never seen.*")
            draws = predictive_draws(tree, queries, seed=seed)
        y = draws["y"].sel(benchmark=benchmark).to_numpy()  # (sample, grid)
        q05, q25, q50, q75, q95 = np.quantile(y, [0.05, 0.25, 0.5, 0.75, 0.95], axis=0)
        ax.fill_between(grid, q05, q95, color=colour, alpha=0.15, linewidth=0)
        ax.fill_between(grid, q25, q75, color=colour, alpha=0.3, linewidth=0)
        tok = f", {typical:.3g}T tokens" if np.isfinite(typical) else ""
        ax.plot(grid, q50, color=colour, lw=2, label=f"{fam} (median, 50/90%{tok})")
        seen = _observed_cells(tree, fam, benchmark)
        if len(seen):
            ax.scatter(seen["size"], seen["score"], color=colour, edgecolor="k", zorder=3, s=30,
                       label=f"{fam}: in the fit")
        if table is not None and benchmark in table.columns and SUBFAMILY in table.columns:
            rows = table[(table[SUBFAMILY].astype(str) == fam) & table[benchmark].notna()]
            rows = rows[~rows[MODEL].astype(str).isin(in_fit)]
            if len(rows):
                ax.scatter(rows[SIZE].astype(float), rows[benchmark].astype(float), facecolor="white",
                           edgecolor=colour, linewidth=1.5, zorder=3, s=36, label=f"{fam}: held out")
    floor = enc.floor[enc.benchmarks.index(benchmark)]
    ax.axhline(floor, color="0.4", ls=":", lw=1, label=f"chance ({floor:g})")
    ax.set_xscale("log")
    ax.set_xlabel("parameters (B, log scale)")
    ax.set_ylabel(f"{benchmark} score")
    ax.set_title(f"{benchmark}: {', '.join(families)}")
    ax.legend(fontsize="small", loc="best")
    return ax


def uncertainty_sources(forecast: pd.DataFrame, *, benchmark: str | None = None, ax=None):
    """Why each forecast is uncertain: the share of its predictive variance from each source
    (the ``share_*`` columns of ``SlothBayes.forecast``), one stacked bar per model, averaged
    over benchmarks or for one ``benchmark``. Returns the Axes."""
    shares = [c for c in forecast.columns if str(c).startswith("share_")]
    if not shares:
        raise ValueError("the forecast has no share_* columns: forecast with sources=True")
    df = forecast if benchmark is None else forecast[forecast["benchmark"] == benchmark]
    if df.empty:
        raise ValueError(f"no forecast for benchmark {benchmark!r}")
    table = df.groupby("model", sort=False)[shares].mean()
    ax = _ax(ax, figsize=(6.4, 0.35 * len(table) + 1.4))
    left = np.zeros(len(table))
    for i, col in enumerate(shares):
        ax.barh(table.index, table[col], left=left, color=f"C{i}", label=col[len("share_"):].replace("_", " "))
        left += table[col].to_numpy()
    ax.set_xlim(0, 1)
    ax.invert_yaxis()
    ax.set_xlabel("share of the predictive variance")
    ax.set_title("why each forecast is uncertain" + ("" if benchmark is None else f" ({benchmark})"))
    ax.legend(fontsize="small", ncols=min(len(shares), 3), loc="upper center", bbox_to_anchor=(0.5, -0.25))
    return ax


def forecast_panel(
    forecast_df: pd.DataFrame,
    models: Sequence[str] | None = None,
    benchmarks: Sequence[str] | None = None,
    *,
    ax=None,
):
    """Forest plot of a forecast table: per benchmark and query model, the median with its
    central 50% (thick) and 90% (thin) intervals; the marker colour is ``p_overestimate``
    (the probability that the classic point forecast ``point`` is too high). A ``truth`` column, if
    present, is drawn as black crosses.

    Returns
    -------
    matplotlib.axes.Axes
    """
    need = ["model", "benchmark", "median", "lower_50", "upper_50", "lower_90", "upper_90"]
    _check_cells(forecast_df, need, "forecast table")
    df = forecast_df
    if models is not None:
        df = df[df["model"].isin(list(models))]
    if benchmarks is not None:
        df = df[df["benchmark"].isin(list(benchmarks))]
    if df.empty:
        raise ValueError("nothing to plot: no forecast rows for these models/benchmarks")
    bench_order = list(pd.unique(df["benchmark"]))
    model_order = list(pd.unique(df["model"]))
    df = df.assign(
        _b=df["benchmark"].map({b: i for i, b in enumerate(bench_order)}),
        _m=df["model"].map({m: i for i, m in enumerate(model_order)}),
    ).sort_values(["_b", "_m"], kind="stable")
    n = len(df)
    ax = _ax(ax, figsize=(7.0, max(2.5, 0.28 * n + 1.0)))
    ypos = np.arange(n)[::-1]
    ax.hlines(ypos, df["lower_90"], df["upper_90"], color="0.35", lw=1.2)
    ax.hlines(ypos, df["lower_50"], df["upper_50"], color="0.2", lw=3.5)
    norm = Normalize(0.0, 1.0)
    if "p_overestimate" in df:
        sc = ax.scatter(df["median"], ypos, c=df["p_overestimate"], cmap="coolwarm", norm=norm,
                        edgecolor="k", zorder=3, s=40)
        ax.figure.colorbar(sc, ax=ax, label="P(point forecast too high)", shrink=0.8)
    else:
        ax.scatter(df["median"], ypos, color="C0", edgecolor="k", zorder=3, s=40)
    if "truth" in df and df["truth"].notna().any():
        ok = df["truth"].notna().to_numpy()
        ax.scatter(df["truth"].to_numpy()[ok], ypos[ok], marker="x", color="k", zorder=4, s=36,
                   label="observed")
        ax.legend(fontsize="small", loc="lower right")
    if len(bench_order) > 1 and len(model_order) > 1:
        labels = [f"{b} | {m}" for b, m in zip(df["benchmark"], df["model"])]
        edges = np.flatnonzero(np.diff(df["_b"].to_numpy())) + 0.5
        for e in edges:
            ax.axhline(ypos[0] - e, color="0.85", lw=0.8)
    elif len(model_order) > 1:
        labels = list(df["model"])
    else:
        labels = list(df["benchmark"])
    ax.set_yticks(ypos, labels, fontsize="small")
    ax.set_xlabel("forecast score (median, 50% and 90% intervals)")
    ax.set_ylim(-0.7, n - 0.3)
    return ax


# -- parameters ------------------------------------------------------------------------------
def loadings_heatmap(idata, *, prob: float = 0.9, ax=None):
    """Posterior mean loadings (benchmark x skill), each cell annotated with the width of its
    central ``prob`` interval; anchor entries fixed by the identification are marked.

    Returns
    -------
    matplotlib.axes.Axes
    """
    tree = _tree(idata)
    lam = _draws(tree, "loadings")  # (S, J, K)
    mean = lam.mean(0)
    lo, _, hi = _interval(lam, prob)
    width = hi - lo
    benches = [str(b) for b in tree.posterior["benchmark"].values]
    skills = [str(s) for s in tree.posterior["skill"].values]
    ax = _ax(ax, figsize=(1.6 * len(skills) + 2.5, 0.42 * len(benches) + 1.4))
    top = float(np.nanmax(np.abs(mean))) if mean.size else 1.0
    signed = bool(np.nanmin(mean) < 0)  # signed loadings: a diverging scale centred on 0
    im = ax.imshow(mean, cmap="RdBu_r" if signed else "viridis", aspect="auto",
                   vmin=-top if signed else 0.0, vmax=top)
    for j in range(len(benches)):
        for k in range(len(skills)):
            fixed = width[j, k] < 1e-9
            text = f"{mean[j, k]:.2g} (fixed)" if fixed else f"{mean[j, k]:.2f}\n±{width[j, k] / 2:.2f}"
            dark = abs(mean[j, k]) > 0.6 * top if signed else mean[j, k] <= 0.6 * top
            colour = "w" if dark else "k"
            ax.text(k, j, text, ha="center", va="center", fontsize="x-small", color=colour)
    ax.set_xticks(range(len(skills)), skills)
    ax.set_yticks(range(len(benches)), benches)
    ax.set_title(f"loadings: posterior mean, ± half-width of the {prob:.0%} interval")
    ax.figure.colorbar(im, ax=ax, label="loading", shrink=0.8)
    return ax


def _family_kind(tree) -> dict[str, bool]:
    cd = tree.constant_data
    fam = cd["llm_family"].to_numpy().astype(str)
    ins = cd["llm_instruct"].to_numpy() > 0.5
    return {f: bool(ins[fam == f].mean() > 0.5) for f in np.unique(fam)}


def family_forest(
    idata,
    *,
    skill=0,
    families: Sequence[str] | None = None,
    prob: float = 0.9,
    sort: bool = True,
    ax=None,
):
    """Efficiency ``alpha`` of each sub-family on one skill: median, central 50% and ``prob``
    intervals; instruct/chat sub-families in a second colour.

    Returns
    -------
    matplotlib.axes.Axes
    """
    tree = _tree(idata)
    (name,) = _skill_names(tree, skill)
    alpha = tree.posterior["alpha"].sel(skill=name)
    fams = [str(f) for f in alpha["family"].values]
    if families is not None:
        unknown = [f for f in families if f not in fams]
        if unknown:
            raise ValueError(f"sub-families not in the fit: {', '.join(unknown)}")
        fams = list(families)
    a = alpha.sel(family=fams).stack(sample=("chain", "draw")).transpose("sample", ...).to_numpy()
    lo, med, hi = _interval(a, prob)
    lo50, _, hi50 = _interval(a, 0.5)
    order = np.argsort(med) if sort else np.arange(len(fams))[::-1]
    kind = _family_kind(tree)
    ax = _ax(ax, figsize=(6.4, max(2.5, 0.22 * len(fams) + 1.0)))
    y = np.arange(len(fams))
    colours = np.array(["C1" if kind.get(f, False) else "C0" for f in fams])[order]
    ax.hlines(y, lo[order], hi[order], color=colours, lw=1.2)
    ax.hlines(y, lo50[order], hi50[order], color=colours, lw=3.5)
    ax.scatter(med[order], y, color=colours, edgecolor="k", zorder=3, s=25)
    ax.set_yticks(y, [fams[i] for i in order], fontsize="x-small" if len(fams) > 25 else "small")
    ax.axvline(0.0, color="0.6", lw=0.8, ls=":")
    ax.set_xlabel(f"alpha ({name}): median, 50% and {prob:.0%} intervals")
    ax.set_title("family efficiency (blue: base, orange: instruct/chat)")
    return ax


def instruct_shift_plot(idata, *, prob: float = 0.9, ax=None):
    """Post-training (instruct/chat vs base) shift of each skill: median with central 50% and
    ``prob`` intervals, annotated with the posterior probability that the shift is positive.

    Returns
    -------
    matplotlib.axes.Axes
    """
    tree = _tree(idata)
    d = _draws(tree, "instruct_shift")  # (S, K)
    skills = [str(s) for s in tree.posterior["skill"].values]
    lo, med, hi = _interval(d, prob)
    lo50, _, hi50 = _interval(d, 0.5)
    ax = _ax(ax, figsize=(6.0, 0.6 * len(skills) + 1.5))
    y = np.arange(len(skills))[::-1]
    ax.hlines(y, lo, hi, color="C2", lw=1.2, label=f"{prob:.0%}")
    ax.hlines(y, lo50, hi50, color="C2", lw=4, label="50%")
    ax.scatter(med, y, color="C2", edgecolor="k", zorder=3, label="median")
    for yi, p, h in zip(y, (d > 0).mean(0), hi):
        ax.annotate(f"P(>0) = {p:.2f}", (h, yi), xytext=(6, 0), textcoords="offset points",
                    va="center", fontsize="small")
    ax.axvline(0.0, color="0.5", ls=":", lw=1)
    ax.set_yticks(y, skills)
    ax.set_xlabel("skill shift of instruction/chat tuning")
    ax.set_title("what post-training does to each skill")
    ax.margins(x=0.25)
    return ax


def _row_draws(tree, rows: pd.DataFrame, seed: int = 0) -> dict[str, np.ndarray]:
    """The model's draws (``skills``, ``mu``, ``sd``, ``y``) for table rows (LLMs of the fit or
    points along a family's law), cells reshaped to (S, rows, benchmarks)."""
    data, extra, _ = query_data(tree, rows)
    out = model_draws(tree, data, seed=seed, extra=extra)
    n_bench = len(encoding_of(tree).benchmarks)
    return {k: v if k == "skills" else v.reshape(v.shape[0], len(rows), n_bench) for k, v in out.items()}


def _path_rows(tree, family: str, size_z, tokens_z, instruct: float) -> pd.DataFrame:
    """Rows of a sub-family of the fit along a covariate path (standardised size, tokens)."""
    enc = encoding_of(tree)
    coarse = enc.coarse[enc.sub_coarse[enc.subfamilies.index(family)]]
    size = np.exp(np.asarray(size_z, float) * enc.size_scale + enc.size_loc)
    tokens = np.exp(np.asarray(tokens_z, float) * enc.tokens_scale + enc.tokens_loc)
    return pd.DataFrame({MODEL: [f"{family}@{i}" for i in range(len(size))], FAMILY: coarse, SUBFAMILY: family,
                         INSTRUCT: bool(instruct), SIZE: size, TOKENS: tokens})


def _skill_curve(tree, family: str, size_z, tokens_z, instruct: float):
    """Draws of the skills (S, G, K) of a sub-family of the fit along a covariate path."""
    return _row_draws(tree, _path_rows(tree, family, size_z, tokens_z, instruct))["skills"]


def llm_skills(idata) -> np.ndarray:
    """Posterior draws of every LLM's skills, (sample, llm, skill), from the model itself
    (family efficiency, covariates, instruct shift, slope deviations)."""
    tree = _tree(idata)
    return _row_draws(tree, fit_table(tree))["skills"]


def skill_trajectories(
    idata,
    families: Sequence[str],
    *,
    skills=None,
    prob: float = 0.9,
    n_grid: int = 30,
    ax=None,
):
    """Skills against log model size for a few sub-families (one panel per skill): the
    posterior median curve with its central ``prob`` band at the family's typical tokens,
    and the family's LLMs (posterior median skill, residual included) as points.

    Parameters
    ----------
    families : sub-families of the fit.
    skills : skill names or indices (default all).
    ax : Axes or sequence of Axes, one per skill.

    Returns
    -------
    (matplotlib.figure.Figure, numpy array of Axes)
    """
    tree = _tree(idata)
    enc = encoding_of(tree)
    names = _skill_names(tree, skills)
    unknown = [f for f in families if f not in enc.subfamilies]
    if unknown:
        raise ValueError(f"sub-families not in the fit: {', '.join(unknown)}")
    if ax is None:
        fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 3.8), layout="constrained",
                                 squeeze=False)
        axes = axes[0]
    else:
        axes = np.atleast_1d(np.asarray(ax, dtype=object))
        if len(axes) != len(names):
            raise ValueError(f"give one Axes per skill ({len(names)}), got {len(axes)}")
        fig = axes[0].figure
    all_skills = [str(s) for s in tree.posterior["skill"].values]
    kidx = [all_skills.index(s) for s in names]
    cd = tree.constant_data
    llm_size = _destandardise_size(enc, cd["llm_size_z"].to_numpy())
    paths, grids = [fit_table(tree)], []
    for fam in families:  # one run of the model for the LLMs and every family's path
        idx = _family_llms(tree, fam)
        sz = cd["llm_size_z"].to_numpy()[idx]
        tz = cd["llm_tokens_z"].to_numpy()[idx]
        tz_typ = float(np.nanmedian(tz)) if np.isfinite(tz).any() else enc.coarse_tokens_loc.get(
            enc.coarse[enc.sub_coarse[enc.subfamilies.index(fam)]], 0.0)
        grids.append(np.linspace(sz.min() - 0.3, sz.max() + 0.3, n_grid))
        ins = float(np.mean(cd["llm_instruct"].to_numpy()[idx]) > 0.5)
        paths.append(_path_rows(tree, fam, grids[-1], np.full(n_grid, tz_typ), ins))
    skills = _row_draws(tree, pd.concat(paths, ignore_index=True))["skills"]
    llm_theta, n_llm = skills[:, : len(enc.llms)], len(enc.llms)
    for i, fam in enumerate(families):
        colour = f"C{i % 10}"
        idx, grid_z = _family_llms(tree, fam), grids[i]
        theta = skills[:, n_llm + i * n_grid : n_llm + (i + 1) * n_grid]
        lo, med, hi = _interval(theta, prob)
        grid = _destandardise_size(enc, grid_z)
        pts = np.median(llm_theta[:, idx], axis=0)
        for a, k in zip(axes, kidx):
            a.fill_between(grid, lo[:, k], hi[:, k], color=colour, alpha=0.2, linewidth=0)
            a.plot(grid, med[:, k], color=colour, lw=2, label=fam)
            a.scatter(llm_size[idx], pts[:, k], color=colour, edgecolor="k", s=22, zorder=3)
    for a, name in zip(axes, names):
        a.set_xscale("log")
        a.set_xlabel("parameters (B, log scale)")
        a.set_ylabel(name)
        a.set_title(f"{name}: median and {prob:.0%} band")
    axes[0].legend(fontsize="small")
    return fig, axes


# -- backtest calibration ----------------------------------------------------------------------
def coverage_table(cells: pd.DataFrame, probs: Sequence[float] = NOMINAL) -> pd.DataFrame:
    """Empirical coverage of the central p-interval from PIT values: ``mean(|pit - 0.5| <= p/2)``
    at each nominal ``p``, with the count of cells."""
    _check_cells(cells, ["pit"])
    pit = cells["pit"].dropna().to_numpy(float)
    probs = np.asarray(probs, float)
    cov = np.array([np.mean(np.abs(pit - 0.5) <= p / 2) for p in probs]) if len(pit) else np.full(len(probs), np.nan)
    return pd.DataFrame({"nominal": probs, "coverage": cov, "n": len(pit)})


def calibration_curve(cells: pd.DataFrame, *, probs: Sequence[float] = NOMINAL, by: str | None = None, ax=None):
    """Empirical against nominal coverage of central predictive intervals (from PIT values),
    with a 95% binomial band around the diagonal; diamonds mark the coverage of the reported
    ``[lower_50, upper_50]`` and ``[lower_90, upper_90]`` columns. ``by`` (e.g.
    ``"benchmark"``) adds one thin line per group.

    Returns
    -------
    matplotlib.axes.Axes
    """
    _check_cells(cells, ["pit"])
    ax = _ax(ax, figsize=(4.8, 4.6))
    tab = coverage_table(cells, probs)
    p = tab["nominal"].to_numpy()
    n = max(int(tab["n"].iloc[0]), 1)
    fine = np.linspace(0.0, 1.0, 101)
    ax.fill_between(fine, np.clip(fine - 1.96 * np.sqrt(fine * (1 - fine) / n), 0, 1),
                    np.clip(fine + 1.96 * np.sqrt(fine * (1 - fine) / n), 0, 1),
                    color="0.85", linewidth=0, label=f"95% band (n={n})")
    ax.plot([0, 1], [0, 1], color="0.4", ls="--", lw=1)
    if by is not None:
        _check_cells(cells, [by])
        for g, sub in cells.groupby(by, sort=True):
            t = coverage_table(sub, probs)
            ax.plot(t["nominal"], t["coverage"], lw=0.8, alpha=0.6, label=str(g))
    ax.plot(p, tab["coverage"], "o-", color="C0", lw=2, label="all cells (PIT)")
    for level in (50, 90):
        cols = [f"lower_{level}", f"upper_{level}", "truth"]
        if all(c in cells for c in cols):
            ok = cells[cols].notna().all(axis=1)
            if ok.any():
                c = cells[ok]
                inside = ((c["truth"] >= c[cols[0]]) & (c["truth"] <= c[cols[1]])).mean()
                ax.plot([level / 100], [inside], "D", color="C3", ms=7, zorder=4,
                        label="reported intervals" if level == 50 else None)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")
    ax.set_xlabel("nominal coverage")
    ax.set_ylabel("empirical coverage")
    ax.set_title("calibration of central intervals")
    ax.legend(fontsize="x-small", loc="upper left")
    return ax


def pit_histogram(cells: pd.DataFrame, *, bins: int = 10, ax=None):
    """Histogram of PIT values (uniform when calibrated; U-shaped when intervals are too
    narrow, hump-shaped when too wide) with the expected count and its 90% binomial band.

    Returns
    -------
    matplotlib.axes.Axes
    """
    from scipy.stats import binom

    _check_cells(cells, ["pit"])
    pit = cells["pit"].dropna().to_numpy(float)
    ax = _ax(ax, figsize=(5.2, 3.6))
    edges = np.linspace(0.0, 1.0, bins + 1)
    n = len(pit)
    lo, hi = binom.ppf([0.05, 0.95], max(n, 1), 1.0 / bins)
    ax.fill_between([0, 1], [lo, lo], [hi, hi], color="0.85", linewidth=0, label="90% band if uniform")
    ax.hist(pit, bins=edges, color="C0", edgecolor="white")
    ax.axhline(n / bins, color="0.3", ls="--", lw=1, label="expected")
    ax.set_xlim(0, 1)
    ax.set_xlabel("PIT (predictive CDF at the truth)")
    ax.set_ylabel("cells")
    ax.set_title(f"PIT histogram ({n} cells)")
    ax.legend(fontsize="x-small")
    return ax


def error_vs_distance(cells: pd.DataFrame, *, bins: int = 6, ax=None):
    """Absolute error against extrapolation distance (log10 of the model's size over its
    family's largest observed size; > 0 is extrapolation), with binned means of the error
    and of the 90% interval half-width: intervals should widen as errors grow.

    Returns
    -------
    matplotlib.axes.Axes
    """
    _check_cells(cells, ["distance", "abs_error"])
    c = cells[["distance", "abs_error"]].assign(
        half=(cells["upper_90"] - cells["lower_90"]) / 2 if {"lower_90", "upper_90"} <= set(cells) else np.nan
    ).dropna(subset=["distance", "abs_error"])
    ax = _ax(ax, figsize=(6.0, 4.0))
    ax.scatter(c["distance"], c["abs_error"], s=10, alpha=0.35, color="C0", label="cells")
    if len(c) and c["distance"].nunique() > 1:
        edges = np.unique(np.quantile(c["distance"], np.linspace(0, 1, bins + 1)))
        which = np.clip(np.digitize(c["distance"], edges[1:-1]), 0, len(edges) - 2)
        g = c.groupby(which)
        mid = g["distance"].mean()
        ax.plot(mid, g["abs_error"].mean(), "o-", color="C3", lw=2, label="mean |error|")
        if c["half"].notna().any():
            ax.plot(mid, g["half"].mean(), "s--", color="C2", lw=1.5, label="mean 90% half-width")
    ax.axvline(0.0, color="0.5", ls=":", lw=1)
    ax.set_xlabel("log10(size / family's largest observed size)")
    ax.set_ylabel("absolute error")
    ax.set_title("error against extrapolation distance")
    ax.legend(fontsize="small")
    return ax


def benchmark_errors(cells: pd.DataFrame, *, ax=None):
    """Mean absolute error per benchmark with 95% standard-error bars, annotated with the
    number of cells and the empirical coverage of the 90% interval.

    Returns
    -------
    matplotlib.axes.Axes
    """
    _check_cells(cells, ["benchmark", "abs_error"])
    c = cells.dropna(subset=["abs_error"])
    g = c.groupby("benchmark")["abs_error"]
    tab = pd.DataFrame({"mae": g.mean(), "se": g.std(ddof=1) / np.sqrt(g.count()), "n": g.count()})
    tab["se"] = tab["se"].fillna(0.0)
    if {"truth", "lower_90", "upper_90"} <= set(c):
        inside = (c["truth"] >= c["lower_90"]) & (c["truth"] <= c["upper_90"])
        tab["cov90"] = inside.groupby(c["benchmark"]).mean()
    tab = tab.sort_values("mae")
    ax = _ax(ax, figsize=(6.4, 0.38 * len(tab) + 1.4))
    y = np.arange(len(tab))
    ax.barh(y, tab["mae"], xerr=1.96 * tab["se"], color="C0", alpha=0.8, capsize=3)
    for yi, (_, row) in zip(y, tab.iterrows()):
        note = f"n={int(row['n'])}"
        if "cov90" in tab:
            note += f", 90% cov {row['cov90']:.2f}"
        ax.annotate(note, (row["mae"] + 1.96 * row["se"], yi), xytext=(4, 0), textcoords="offset points",
                    va="center", fontsize="x-small")
    ax.set_yticks(y, tab.index)
    ax.set_xlabel("mean absolute error (± 1.96 SE)")
    ax.set_title("held-out error per benchmark")
    ax.margins(x=0.3)
    return ax


# -- ArviZ wrappers --------------------------------------------------------------------------
def _figure_of(pc):
    fig = pc.viz["figure"]
    fig = fig.item() if hasattr(fig, "item") else fig
    try:  # two-line panel titles overlap the axis above with the default spacing
        fig.set_layout_engine("constrained")
    except RuntimeError:  # a layout engine is already set and cannot be swapped
        pass
    return fig, np.asarray(fig.axes, dtype=object)


def rank_plot(idata, var_names: Sequence[str] | str = ("slopes", "instruct_shift"), **kwargs):
    """Rank plots (fractional-rank ECDF differences per chain) of ``arviz_plots.plot_rank``.
    Chains that explore the same posterior give overlapping curves near zero.

    Returns
    -------
    (matplotlib.figure.Figure, numpy array of Axes)
    """
    import arviz_plots as azp

    tree = _tree(idata)
    names = [var_names] if isinstance(var_names, str) else list(var_names)
    n_panels = sum(int(np.prod([tree.posterior.sizes[d] for d in tree.posterior[v].dims[2:]])) for v in names)
    cols = min(4, n_panels)
    rows = -(-n_panels // cols)
    kwargs.setdefault("figure_kwargs", {"figsize": (3.4 * cols, 3.1 * rows + 0.6)})
    pc = azp.plot_rank(tree, var_names=names, backend="matplotlib", **kwargs)
    return _figure_of(pc)


def posterior_predictive_cells(idata, *, seed: int = 0) -> xr.Dataset:
    """Posterior predictive draws of every observed cell: Dataset with ``y`` (a replicated
    score, censored to [0, 1] as the model's likelihood), ``mu`` (its expected value) and
    ``sd`` (the noise sd around it), dims (chain, draw, cell), and a ``benchmark``
    coordinate on ``cell``."""
    tree = _tree(idata)
    enc = encoding_of(tree)
    cd = tree.constant_data
    llm_of_cell = [enc.llms.index(m) for m in cd["cell_llm"].to_numpy().astype(str)]
    bench_of_cell = cd["cell_benchmark"].to_numpy().astype(str)
    col = np.array([enc.benchmarks.index(b) for b in bench_of_cell])
    draws = _row_draws(tree, fit_table(tree), seed=seed)
    y, mu, sd = (draws[v][:, llm_of_cell, col] for v in ("y", "mu", "sd"))
    n_chain, n_draw = tree.posterior.sizes["chain"], tree.posterior.sizes["draw"]
    shape = (n_chain, n_draw, mu.shape[-1])
    coords = {
        "chain": tree.posterior["chain"].values,
        "draw": tree.posterior["draw"].values,
        "cell": tree.observed_data["cell"].values,
    }
    dims = ("chain", "draw", "cell")
    ds = xr.Dataset(
        {"y": (dims, y.reshape(shape)), "mu": (dims, mu.reshape(shape)), "sd": (dims, sd.reshape(shape))},
        coords=coords,
    )
    return ds.assign_coords(benchmark=("cell", bench_of_cell))


def ppc_plot(
    idata,
    benchmark: str | Sequence[str] | None = None,
    *,
    kind: str = "kde",
    num_samples: int = 50,
    seed: int = 0,
    **kwargs,
):
    """Posterior predictive check per benchmark (``arviz_plots.plot_ppc_dist``): the
    distribution of observed scores against ``num_samples`` replicated data sets drawn from
    the posterior (:func:`posterior_predictive_cells`).

    Returns
    -------
    (matplotlib.figure.Figure, numpy array of Axes)
    """
    import arviz_plots as azp

    tree = _tree(idata)
    pp = posterior_predictive_cells(tree, seed=seed)
    benches = pp["benchmark"].to_numpy()
    if benchmark is not None:
        wanted = [benchmark] if isinstance(benchmark, str) else list(benchmark)
        unknown = sorted(set(wanted) - set(benches))
        if unknown:
            raise ValueError(f"no observed cells of {', '.join(unknown)} in the fit")
        keep = np.isin(benches, wanted)
        pp = pp.isel(cell=keep)
    # cells grouped by benchmark: a repeated coordinate, one panel per value
    pred = pp[["y"]].drop_vars("benchmark").assign_coords(cell=pp["benchmark"].to_numpy())
    obs = tree.observed_data.to_dataset()[["y"]].sel(cell=pp["cell"].values)
    obs = obs.assign_coords(cell=pp["benchmark"].to_numpy())
    dt = xr.DataTree.from_dict({"posterior_predictive": pred, "observed_data": obs})
    n_panels = len(np.unique(pred["cell"].values))
    cols = min(4, n_panels)
    rows = -(-n_panels // cols)
    kwargs.setdefault("figure_kwargs", {"figsize": (3.4 * cols, 3.1 * rows + 0.6)})
    kwargs.setdefault("cols", ["cell"])
    pc = azp.plot_ppc_dist(dt, kind=kind, num_samples=num_samples, backend="matplotlib", **kwargs)
    return _figure_of(pc)
