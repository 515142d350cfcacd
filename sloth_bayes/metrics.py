"""Scores of probabilistic forecasts: PIT, CRPS, interval coverage, reliability.

Pure NumPy/pandas, no sampling. Conventions: predictive ``draws`` carry the samples on
``axis`` (default 0, as the ``sample`` dim of :func:`~sloth_bayes.forecast.predictive_draws`)
and ``truth`` has the shape of the remaining axes; a NaN truth (an unobserved cell) gives a
NaN score and is left out of every average.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> draws = rng.normal(size=(4000, 500))
>>> truth = rng.normal(size=500)                    # same distribution: calibrated
>>> u = pit(draws, truth)
>>> bool(abs(interval_coverage_from_pit(u, 0.9) - 0.9) < 0.05)
True
>>> lo, hi = np.quantile(draws, [0.05, 0.95], axis=0)
>>> bool(abs(coverage(lo, hi, truth) - 0.9) < 0.05)
True

The cell table of a backtest (one row per scored model x benchmark) is summarised by
:func:`summarise_cells`: MAE of the median, coverage of the 50% / 90% intervals, interval
width, CRPS, the direction of the errors and the calibration of the reported probability
of over-estimation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd

__all__ = [
    "Reliability",
    "auc",
    "calibrated_hits",
    "calibrated_range",
    "coverage",
    "crps",
    "crps_normal",
    "group_bootstrap",
    "interval_coverage_from_pit",
    "pit",
    "reliability",
    "summarise_cells",
]

#: Columns the baselines add to a cell table: name in the cells -> name in the summary.
BASELINE_COLUMNS = {
    "pred_point_skills": "mae_point_skills_points",
    "pred_flops_sigmoid": "mae_flops_sigmoid_points",
}


def _move(draws, truth, axis: int) -> tuple[np.ndarray, np.ndarray]:
    d = np.moveaxis(np.asarray(draws, dtype=float), axis, 0)
    t = np.asarray(truth, dtype=float)
    if d.shape[1:] != t.shape:
        raise ValueError(
            f"draws (samples on axis {axis}) have cell shape {d.shape[1:]}, truth {t.shape}: "
            "they must match"
        )
    if d.shape[0] < 1:
        raise ValueError("draws hold no samples")
    return d, t


def pit(draws, truth, *, axis: int = 0, seed=0) -> np.ndarray:
    """Randomised probability integral transform of each truth under its predictive draws.

    ``u = F(y-) + V * (F(y) - F(y-))`` with ``F`` the empirical CDF of the draws and ``V``
    uniform on (0, 1): exact for predictive distributions with atoms (the score predictive
    has point masses at exactly 0 and 1), so a calibrated forecast gives uniform ``u`` even
    when truth and draws tie.

    Parameters
    ----------
    draws : array, samples on ``axis``.
    truth : array of the shape of ``draws`` without ``axis``; NaN gives NaN.
    seed : int or ``numpy.random.Generator`` for ``V`` (same seed, same PIT).

    Returns
    -------
    numpy.ndarray of the shape of ``truth``, values in [0, 1].

    Examples
    --------
    >>> float(pit([[0.0], [0.0], [0.5], [1.0]], [0.25])[0])
    0.5
    """
    d, t = _move(draws, truth, axis)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    below = (d < t).mean(axis=0)
    at_or_below = (d <= t).mean(axis=0)
    v = rng.uniform(size=t.shape)
    u = below + v * (at_or_below - below)
    return np.where(np.isfinite(t), u, np.nan)


def crps(draws, truth, *, axis: int = 0) -> np.ndarray:
    """Continuous ranked probability score of each truth under its predictive draws.

    Energy form ``E|X - y| - E|X - X'| / 2`` of the empirical distribution of the draws,
    with ``E|X - X'| = 2 / n^2 * sum_i (2i - n - 1) x_(i)`` over the sorted draws
    (O(n log n), and exactly the CRPS of the empirical CDF). Same units as the scores;
    lower is better; a point forecast's CRPS is its absolute error.

    Examples
    --------
    >>> float(crps([[0.3], [0.3]], [0.5])[0])    # a point mass: the absolute error
    0.2
    """
    d, t = _move(draws, truth, axis)
    n = d.shape[0]
    xs = np.sort(d, axis=0)
    weights = (2.0 * np.arange(1, n + 1) - n - 1).reshape((n,) + (1,) * t.ndim)
    spread = 2.0 / n**2 * np.sum(weights * xs, axis=0)
    score = np.abs(d - t).mean(axis=0) - 0.5 * spread
    return np.where(np.isfinite(t), score, np.nan)


def crps_normal(mean, sd, truth) -> np.ndarray:
    """Closed-form CRPS of ``Normal(mean, sd)`` (a reference for :func:`crps`)."""
    from scipy.stats import norm

    mean, sd, truth = (np.asarray(a, dtype=float) for a in (mean, sd, truth))
    z = (truth - mean) / sd
    return sd * (z * (2.0 * norm.cdf(z) - 1.0) + 2.0 * norm.pdf(z) - 1.0 / np.sqrt(np.pi))


def _finite(*arrays) -> np.ndarray:
    ok = np.ones(np.broadcast_shapes(*(np.shape(a) for a in arrays)), dtype=bool)
    for a in arrays:
        ok &= np.isfinite(np.asarray(a, dtype=float))
    return ok


def coverage(lower, upper, truth) -> float:
    """Share of (finite) truths inside ``[lower, upper]`` (NaN when there is none)."""
    lower, upper, truth = (np.asarray(a, dtype=float) for a in (lower, upper, truth))
    ok = _finite(lower, upper, truth)
    if not ok.any():
        return float("nan")
    inside = (truth >= lower) & (truth <= upper)
    return float(inside[ok].mean())


def interval_coverage_from_pit(u, p: float) -> float:
    """Coverage of the central ``p`` interval implied by PIT values: ``mean(|u - 1/2| <= p/2)``."""
    u = np.asarray(u, dtype=float)
    u = u[np.isfinite(u)]
    if u.size == 0:
        return float("nan")
    return float(np.mean(np.abs(u - 0.5) <= p / 2.0))


def auc(score, outcome) -> float:
    """Area under the ROC curve of ``score`` for a 0/1 ``outcome``: the probability that a
    random positive scores above a random negative, ties counting one half (Mann-Whitney
    U / (n1 n0), from average ranks). 0.5: no information; NaN without both classes.

    Examples
    --------
    >>> auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])
    0.75
    >>> auc([0.5, 0.5], [0, 1])
    0.5
    """
    from scipy.stats import rankdata

    p = np.asarray(score, dtype=float).ravel()
    o = np.asarray(outcome, dtype=float).ravel()
    ok = np.isfinite(p) & np.isfinite(o)
    p, o = p[ok], o[ok] > 0.5
    n1, n0 = int(o.sum()), int((~o).sum())
    if n1 == 0 or n0 == 0:
        return float("nan")
    ranks = rankdata(p)  # average ranks of ties
    return float((ranks[o].sum() - n1 * (n1 + 1) / 2.0) / (n1 * n0))


class Reliability(NamedTuple):
    """Binned reliability of a probability forecast.

    table : one row per non-empty bin: ``bin_lower``, ``bin_upper``, ``n``,
        ``predicted`` (mean forecast probability), ``observed`` (frequency of the event).
    brier : mean squared difference between probability and outcome (0/1).
    calibration_error : expected calibration error, ``sum_b n_b / n * |predicted_b -
        observed_b|`` (0 when calibrated, up to sampling noise).
    auc : how well the probability ranks events above non-events (:func:`auc`).
    """

    table: pd.DataFrame
    brier: float
    calibration_error: float
    auc: float = float("nan")


def reliability(p_over, over, *, bins: int = 10) -> Reliability:
    """Reliability of the reported probability of over-estimation.

    Parameters
    ----------
    p_over : forecast probabilities in [0, 1] (e.g. ``p_overestimate``: the probability
        that the reference point forecast ``point`` is above the truth).
    over : observed outcomes (bool or 0/1: the point forecast was above the truth).
    bins : number of equal-width bins of [0, 1] (the last one holds 1.0).

    Examples
    --------
    >>> r = reliability([0.1, 0.1, 0.9, 0.9], [0, 0, 1, 1])
    >>> round(r.brier, 3), round(r.calibration_error, 3), r.auc
    (0.01, 0.1, 1.0)
    """
    p = np.asarray(p_over, dtype=float).ravel()
    o = np.asarray(over, dtype=float).ravel()
    ok = np.isfinite(p) & np.isfinite(o)
    p, o = p[ok], o[ok]
    edges = np.arange(bins + 1) / bins  # exact k / bins: 0.3 is in [0.3, 0.4)
    empty = pd.DataFrame(columns=["bin_lower", "bin_upper", "n", "predicted", "observed"])
    if p.size == 0:
        return Reliability(empty, float("nan"), float("nan"), float("nan"))
    idx = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    rows = []
    for b in range(bins):
        sel = idx == b
        if sel.any():
            rows.append((edges[b], edges[b + 1], int(sel.sum()), p[sel].mean(), o[sel].mean()))
    table = pd.DataFrame(rows, columns=empty.columns)
    ece = float(np.sum(table["n"] * np.abs(table["predicted"] - table["observed"])) / p.size)
    return Reliability(table, float(np.mean((p - o) ** 2)), ece, auc(p, o))


# -- summaries of a cell table -------------------------------------------------------------


def _metrics(cells: pd.DataFrame) -> dict:
    """Metrics of one block of cells (see :func:`summarise_cells`)."""
    c = cells[np.isfinite(cells["truth"].to_numpy(float))]
    truth = c["truth"].to_numpy(float)
    out: dict = {"n": len(c)}
    nan = float("nan")

    def mean(a):
        a = np.asarray(a, dtype=float)
        a = a[np.isfinite(a)]
        return float(a.mean()) if a.size else nan

    err = c["median"].to_numpy(float) - truth
    out["mae"] = mean(np.abs(err))
    out["mae_points"] = 100.0 * out["mae"]
    out["bias_points"] = 100.0 * mean(err)
    if "point" in c:
        point_err = c["point"].to_numpy(float) - truth
        out["mae_point_points"] = 100.0 * mean(np.abs(point_err))
        out["bias_point_points"] = 100.0 * mean(point_err)
    for p in ("50", "90"):
        lo, hi = f"lower_{p}", f"upper_{p}"
        if lo in c and hi in c:
            out[f"coverage_{p}"] = coverage(c[lo], c[hi], truth) if len(c) else nan
    if "lower_90" in c and "upper_90" in c:
        out["width_90_points"] = 100.0 * mean(c["upper_90"].to_numpy(float) - c["lower_90"])
    if "crps" in c:
        out["crps_points"] = 100.0 * mean(c["crps"])
    if "pit" in c:
        out["pit_coverage_90"] = interval_coverage_from_pit(c["pit"], 0.9)
    # direction: the median above the truth = over-estimation
    out["share_over"] = mean(err > 0) if len(c) else nan
    if "p_overestimate" in c and "point" in c:
        point = c["point"].to_numpy(float)
        over = np.where(np.isfinite(point), point > truth, np.nan)
        rel = reliability(c["p_overestimate"], over)
        out["p_over_mean"] = mean(c["p_overestimate"])
        out["over_rate_point"] = mean(over) if len(c) else nan
        out["p_over_auc"] = rel.auc
        out["p_over_brier"] = rel.brier
        out["p_over_ece"] = rel.calibration_error
    for col, name in BASELINE_COLUMNS.items():
        if col in c:
            out[name] = 100.0 * mean(np.abs(c[col].to_numpy(float) - truth))
    return out


def _grouped(cells: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    rows = []
    for key, block in cells.groupby(list(by), sort=False, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        rows.append({**dict(zip(by, key)), **_metrics(block)})
    return pd.DataFrame(rows)


#: Edges (decades of extrapolation) of the ``distance`` level of :func:`summarise_cells`.
DISTANCE_EDGES = (0.0, 0.4, 0.8, 1.2, 1.8, 3.0, np.inf)


def distance_bins(distance: pd.Series) -> pd.Series:
    """Labels ``"0.4-0.8"`` ... of extrapolation distances (decades of size beyond the
    family's observed models; the first bin includes 0, the last is ``"3-inf"``)."""
    edges = DISTANCE_EDGES
    labels = [f"{lo:g}-{hi:g}" for lo, hi in zip(edges[:-1], edges[1:])]
    return pd.cut(distance, edges, labels=labels, include_lowest=True).astype(object)


def summarise_cells(cells: pd.DataFrame, by: str | Sequence[str] | None = None) -> pd.DataFrame:
    """Metrics table of a cell table (one row per scored model x benchmark).

    Parameters
    ----------
    cells : DataFrame with at least ``truth`` and ``median``; the metrics of the other
        columns appear when the columns do: ``lower_50``/``upper_50``, ``lower_90``/
        ``upper_90``, ``crps``, ``pit``, ``point`` + ``p_overestimate``, and the baseline
        predictions ``pred_point_skills`` / ``pred_flops_sigmoid``.
    by : column(s) to group by (e.g. ``"benchmark"``): one row per group. ``None``: the
        full report, per ``set`` when the column exists, with a ``level`` column --
        ``pooled`` (all cells), ``group mean`` (each metric averaged over the ``group``
        values, every group weighing the same), ``benchmark`` and ``group`` (one row each),
        ``distance`` (one row per bin of :func:`distance_bins`, when the cells have a
        ``distance`` column: are the intervals as wide as the errors far out?) -- and the
        benchmark, group or bin name in ``key``.

    Returns
    -------
    DataFrame with ``n`` (scored cells), ``mae`` (score units) and ``mae_points`` (x100),
    ``bias_points`` (mean median - truth), ``mae_point_points`` / ``bias_point_points``
    (the same of the reference point forecast ``point``), ``coverage_50``,
    ``coverage_90``, ``width_90_points``, ``crps_points``, ``pit_coverage_90``,
    ``share_over`` (median above the truth), ``p_over_mean`` vs ``over_rate_point`` (mean
    reported probability that ``point`` over-estimates, and how often it did),
    ``p_over_auc`` / ``p_over_brier`` / ``p_over_ece`` (how well that probability tells the
    direction: AUC, Brier score, calibration error in 10 bins),
    ``mae_point_skills_points`` / ``mae_flops_sigmoid_points`` (baselines).
    """
    if by is not None:
        return _grouped(cells, [by] if isinstance(by, str) else list(by))
    parts = []
    blocks = cells.groupby("set", sort=False) if "set" in cells else [(None, cells)]
    for set_name, block in blocks:
        pooled = pd.DataFrame([{"level": "pooled", "key": "all", **_metrics(block)}])
        pieces = [pooled]
        if "group" in block:
            per_group = _grouped(block, ["group"]).rename(columns={"group": "key"})
            mean_row = per_group.drop(columns=["key"]).mean(numeric_only=True)
            mean_row["n"] = int(per_group["n"].sum())
            pieces.append(pd.DataFrame([{"level": "group mean", "key": "all", **mean_row}]))
        if "benchmark" in block:
            per_bench = _grouped(block, ["benchmark"]).rename(columns={"benchmark": "key"})
            pieces.append(per_bench.assign(level="benchmark"))
        if "group" in block:
            pieces.append(per_group.assign(level="group"))
        if "distance" in block and block["distance"].notna().any():
            bins = block.assign(key=distance_bins(block["distance"]))
            per_bin = _grouped(bins.dropna(subset=["key"]), ["key"]).assign(level="distance")
            pieces.append(per_bin.sort_values("key", key=lambda k: k.str.split("-").str[0].astype(float)))
        table = pd.concat(pieces, ignore_index=True)
        if set_name is not None:
            table.insert(0, "set", set_name)
        parts.append(table)
    out = pd.concat(parts, ignore_index=True)
    first = [c for c in ("set", "level", "key") if c in out]
    out = out[first + [c for c in out.columns if c not in first]]
    out["n"] = out["n"].astype(int)
    return out


def calibrated_hits(draws, *, n_rep: int = 200, seed=0) -> dict[float, np.ndarray]:
    """How many cells a *calibrated* forecast's central intervals would cover, per replicate.

    ``draws`` (S, C): joint predictive draws of C cells (row ``s`` is one draw of all of them:
    the same family efficiency, slope deviation... in every cell of a family). Each of
    ``n_rep`` replicates takes one row at random as the truth of every cell and counts the
    cells whose central 50% and 90% intervals (quantiles of all rows, as
    :func:`~sloth_bayes.forecast.summarise` computes them) contain it. If the truths came from
    the predictive, the pooled coverage would spread as these counts do: cells of one family
    move together, so a backtest of a few families has a wider spread than its cell count
    suggests.

    Returns
    -------
    ``{0.5: hits, 0.9: hits}``, each an int array (n_rep,).
    """
    d = np.asarray(draws, dtype=float)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    truth = d[rng.integers(0, d.shape[0], size=n_rep)]  # (n_rep, C)
    q = np.quantile(d, [0.05, 0.25, 0.75, 0.95], axis=0)
    return {
        0.5: ((truth >= q[1]) & (truth <= q[2])).sum(axis=1),
        0.9: ((truth >= q[0]) & (truth <= q[3])).sum(axis=1),
    }


def calibrated_range(reference: pd.DataFrame, *, prob: float = 0.9) -> pd.DataFrame:
    """The central ``prob`` range of the pooled coverages a calibrated forecast would give
    (per ``set``), from per-fold replicate counts (:func:`calibrated_hits`): ``reference``
    has ``set, group, replicate, n, hits_50, hits_90``; folds are independent, so replicate
    ``r`` of every fold together is one pooled draw.

    Returns
    -------
    DataFrame: ``set``, ``metric`` (``coverage_50``, ``coverage_90``), ``lower``, ``upper``.
    """
    rows = []
    tail = (1.0 - prob) / 2.0
    for set_name, block in reference.groupby("set", sort=False):
        tot = block.groupby("replicate")[["n", "hits_50", "hits_90"]].sum()
        for level in ("50", "90"):
            lower, upper = np.quantile(tot[f"hits_{level}"] / tot["n"], [tail, 1.0 - tail])
            rows.append({"set": set_name, "metric": f"coverage_{level}", "lower": float(lower), "upper": float(upper)})
    return pd.DataFrame(rows)


def group_bootstrap(
    cells: pd.DataFrame, *, prob: float = 0.9, n_boot: int = 2000, seed: int = 0
) -> pd.DataFrame:
    """How much the pooled MAE and coverages of a backtest owe to which families it holds out.

    The cells of one held-out group share its family's efficiency, so they are not
    independent draws: a family whose whole forecast sits high moves every one of its
    cells. This resamples the ``group`` values with replacement (``n_boot`` times, pooled
    metrics of the resampled cells, each group with its own cells) and reports the central
    ``prob`` interval of each metric, per ``set`` when the cells have one. A target missed
    by less than this interval's half-width is not a measured miss.

    Returns
    -------
    DataFrame: ``set`` (if any), ``metric`` (``mae_points``, ``coverage_50``,
    ``coverage_90``), ``estimate`` (the pooled value), ``lower``, ``upper``, ``groups``.
    """
    c = cells[np.isfinite(cells["truth"].to_numpy(float))]
    rng = np.random.default_rng(seed)
    rows = []
    blocks = c.groupby("set", sort=False) if "set" in c else [(None, c)]
    for set_name, block in blocks:
        truth = block["truth"].to_numpy(float)
        per_cell = pd.DataFrame({
            "group": block["group"].to_numpy(),
            "n": 1.0,
            "mae_points": 100.0 * np.abs(block["median"].to_numpy(float) - truth),
            "coverage_50": ((block["lower_50"] <= truth) & (truth <= block["upper_50"])).to_numpy(float),
            "coverage_90": ((block["lower_90"] <= truth) & (truth <= block["upper_90"])).to_numpy(float),
        })
        sums = per_cell.groupby("group", sort=False).sum()  # (G, 1 + metrics)
        counts = rng.multinomial(len(sums), np.full(len(sums), 1.0 / len(sums)), size=n_boot)
        boot = counts @ sums.to_numpy()  # (n_boot, 1 + metrics): totals of the resampled groups
        tail = (1.0 - prob) / 2.0
        for j, metric in enumerate(sums.columns[1:], start=1):
            values = boot[:, j] / boot[:, 0]
            lower, upper = np.quantile(values, [tail, 1.0 - tail])
            row = {"metric": metric, "estimate": sums[metric].sum() / sums["n"].sum(),
                   "lower": float(lower), "upper": float(upper), "groups": len(sums)}
            rows.append(row if set_name is None else {"set": set_name, **row})
    return pd.DataFrame(rows)
