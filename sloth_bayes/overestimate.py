"""Is a forecast too high or too low? Probabilities against a point forecast, and evidence.

A posterior's own median is as likely too high as too low under the model, so a probability
relative to it says nothing. Relative to a point forecast someone actually holds it answers
"is this forecast too optimistic?":

* ``point``: the classic skills scaling law (:class:`~sloth_bayes.baselines.PointSkillsLaw`:
  K skills, shared slopes, one intercept per sub-family, fitted by optimisation) on the same
  table as the posterior, fitted by ``SlothBayes.fit`` and stored in the fit
  (:func:`fit_point_law`, :data:`POINT_ATTR`). ``p_overestimate`` = P(truth < point) under the
  posterior predictive. A new sub-family's ``point`` uses its coarse family's intercept, a new
  family the population's (column ``point_basis``).
* any reference a user holds (a vendor's claim, their own extrapolation, a target):
  ``p_below_reference`` = P(truth < reference) (:func:`resolve_reference`,
  :func:`parse_reference`), and :func:`prob_above` for decisions.
* on backtests: how well ``p_overestimate`` tells the direction of ``point``'s error
  (:func:`signal_scores`: AUC, Brier score, calibration error; :func:`reliability_diagram`)
  and when ``point`` and the posterior median are too high (:func:`guidance_table`).

>>> fc = model.forecast(queries, reference={"MMLU": 0.80})          # doctest: +SKIP
>>> fc[["model", "benchmark", "point", "p_overestimate", "p_below_reference"]]  # doctest: +SKIP
>>> model.prob_above(queries, 0.80)                                # doctest: +SKIP
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .baselines import PointSkillsLaw
from .metrics import reliability

__all__ = [
    "GUIDANCE_SCENARIOS",
    "POINT_ATTR",
    "fit_point_law",
    "guidance_markdown",
    "guidance_table",
    "parse_reference",
    "point_forecast",
    "point_law_from_attrs",
    "prob_above",
    "prob_below",
    "read_backtests",
    "reliability_diagram",
    "resolve_reference",
    "signal_scores",
    "write_guidance",
]

#: Root attribute of a saved fit holding its reference point law (JSON of
#: :meth:`PointSkillsLaw.to_dict`, versioned by its ``format`` entry).
POINT_ATTR = "sloth_bayes_point"


# -- the reference point law -----------------------------------------------------------------
def fit_point_law(table: pd.DataFrame, benchmarks: Sequence[str], *, floors=None, n_skills: int = 2,
                  seed=0) -> PointSkillsLaw:
    """The classic point skills law on ``table`` (the paper's method, on the same cells as
    the posterior): K = ``n_skills``, chance floors ``floors`` ({benchmark: floor})."""
    seed = int(seed) % 2**32 if isinstance(seed, int | np.integer) else 0
    return PointSkillsLaw(n_skills=n_skills, seed=seed).fit(table, list(benchmarks), floors=floors)


def point_law_from_attrs(attrs: Mapping) -> PointSkillsLaw | None:
    """The reference law stored in a fit's attributes, or None when it has none."""
    text = attrs.get(POINT_ATTR)
    return None if text is None else PointSkillsLaw.from_dict(json.loads(text))


def point_forecast(law: PointSkillsLaw, queries: pd.DataFrame, benchmarks: Sequence[str]):
    """``point`` (Q, J) for ``benchmarks`` (NaN where the law has none) and ``point_basis`` (Q,)."""
    pred = law.predict_matrix(queries)
    col = {b: j for j, b in enumerate(law.benchmarks_)}
    out = np.full((len(queries), len(benchmarks)), np.nan)
    for j, b in enumerate(benchmarks):
        if str(b) in col:
            out[:, j] = pred[:, col[str(b)]]
    return out, law.basis(queries)


# -- references and probabilities --------------------------------------------------------------
def resolve_reference(reference, queries: pd.DataFrame | None, models: Sequence[str],
                      benchmarks: Sequence[str]) -> np.ndarray:
    """A reference value per query x benchmark, (Q, J), NaN where there is none.

    ``reference`` is one of: a number (every cell); the name of a column of ``queries`` (one
    value per query model, for every benchmark); a mapping ``{benchmark: number or column}``
    (benchmarks absent from it get none); or an array of shape (Q, J).
    """
    q, j = len(models), len(benchmarks)
    if isinstance(reference, str):
        return np.repeat(_column(queries, reference, models)[:, None], j, axis=1)
    if isinstance(reference, Mapping):
        unknown = [b for b in reference if str(b) not in {str(x) for x in benchmarks}]
        if unknown:
            raise ValueError(f"reference for benchmarks the fit does not forecast: {unknown}; "
                             f"it forecasts {', '.join(map(str, benchmarks))}")
        given = {str(k): v for k, v in reference.items()}
        out = np.full((q, j), np.nan)
        for jj, b in enumerate(map(str, benchmarks)):
            if b in given:
                v = given[b]
                out[:, jj] = _column(queries, v, models) if isinstance(v, str) else float(v)
        return out
    arr = np.asarray(reference, dtype=float)
    if arr.ndim == 0:
        return np.full((q, j), float(arr))
    if arr.shape != (q, j):
        raise ValueError(f"a reference array must have shape (queries, benchmarks) = {(q, j)}, got {arr.shape}")
    return arr


def _column(queries: pd.DataFrame | None, name: str, models: Sequence[str]) -> np.ndarray:
    from .data import MODEL

    if queries is None:
        raise ValueError(f"reference column {name!r} needs the query table")
    if name not in queries.columns:
        raise ValueError(f"reference column {name!r} is not in the query table "
                         f"(columns: {', '.join(map(str, queries.columns))})")
    values = pd.to_numeric(queries[name], errors="coerce")
    values.index = queries[MODEL].astype(str).to_numpy()
    return values.reindex([str(m) for m in models]).to_numpy(float)


def parse_reference(spec: str):
    """A command-line reference: ``COLUMN``, a number (``0.8``), or a comma list
    ``BENCH=VALUE`` / ``BENCH=COLUMN`` (e.g. ``MMLU=0.80,GSM8K=claim_gsm8k``); returns what
    :func:`resolve_reference` takes."""
    spec = spec.strip()
    if not spec:
        raise ValueError("empty reference")

    def value(text: str):
        try:
            return float(text)
        except ValueError:
            return text

    if "=" not in spec:
        return value(spec)
    out = {}
    for part in spec.split(","):
        if not part.strip():
            continue
        bench, sep, v = part.partition("=")
        if not sep or not bench.strip() or not v.strip():
            raise ValueError(f"reference entry {part!r} is not BENCH=VALUE or BENCH=COLUMN")
        out[bench.strip()] = value(v.strip())
    return out


def prob_below(y: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """P(score < reference) per cell from predictive draws ``y`` (S, Q, J); NaN where the
    reference is NaN."""
    ref = np.asarray(reference, dtype=float)
    p = (np.asarray(y) < ref[None]).mean(axis=0)
    return np.where(np.isfinite(ref), p, np.nan)


def prob_above(draws, threshold, queries: pd.DataFrame | None = None) -> pd.DataFrame:
    """P(score > threshold) per query x benchmark, for decisions ("P(the 70B scores above
    0.80 on MMLU)").

    Parameters
    ----------
    draws : predictive draws (``SlothBayes.predictive_draws``: ``y`` with dims sample,
        model, benchmark).
    threshold : as a reference of :func:`resolve_reference` (a number, a column of
        ``queries``, ``{benchmark: value or column}``, or a (Q, J) array).
    queries : the query table (needed for column thresholds).

    Returns
    -------
    DataFrame ``model, benchmark, threshold, p_above`` (only cells with a threshold).
    """
    y = draws["y"].transpose("sample", "model", "benchmark").to_numpy()
    models = [str(m) for m in draws["model"].to_numpy()]
    benches = [str(b) for b in draws["benchmark"].to_numpy()]
    thr = resolve_reference(threshold, queries, models, benches)
    p = (y > thr[None]).mean(axis=0)
    qi, ji = np.meshgrid(np.arange(len(models)), np.arange(len(benches)), indexing="ij")
    qi, ji = qi.ravel(), ji.ravel()
    out = pd.DataFrame({"model": np.asarray(models, dtype=object)[qi],
                        "benchmark": np.asarray(benches, dtype=object)[ji],
                        "threshold": thr[qi, ji], "p_above": p[qi, ji]})
    return out[np.isfinite(out["threshold"])].reset_index(drop=True)


# -- evidence from backtests -------------------------------------------------------------------
#: Scenarios of :func:`guidance_table` -> what they split the cells by.
GUIDANCE_SCENARIOS = {
    "distance": "decades of size beyond the family's largest observed model",
    "observed models": "models of the sub-family in the fit",
    "benchmark": "benchmark",
    "post-training": "base or instruct/chat",
    "family kind": "what the fit knows of the family",
    "release": "sub-family's first release (year)",
}
_DISTANCE_LABELS = ("0-0.5", "0.5-1", "1-1.5", "1.5+")
_NO_MODEL = "none observed"


def _distance_key(d: pd.Series) -> pd.Series:
    """Bins of :data:`GUIDANCE_SCENARIOS` ``distance``: ``0-0.5`` (0.5 decade or less,
    interpolation included), ``0.5-1``, ``1-1.5``, ``1.5+``; no observed model: ``none observed``."""
    v = pd.to_numeric(d, errors="coerce").to_numpy(float)
    idx = np.digitize(v, [0.5, 1.0, 1.5], right=True)
    labels = np.asarray(_DISTANCE_LABELS, dtype=object)[np.clip(idx, 0, 3)]
    return pd.Series(np.where(np.isfinite(v), labels, _NO_MODEL), index=d.index, dtype=object)


def _observed_key(n: pd.Series) -> pd.Series:
    v = pd.to_numeric(n, errors="coerce")
    labels = pd.cut(v, [-0.5, 0.5, 1.5, 2.5, 5.5, np.inf], labels=["0", "1", "2", "3-5", "6+"])
    return labels.astype(object).where(v.notna(), "unknown")


def _scenario_keys(cells: pd.DataFrame, scenario: str) -> pd.Series | None:
    """The key of each cell for ``scenario`` (None when the cells lack its column)."""
    if scenario == "distance":
        return _distance_key(cells["distance"]) if "distance" in cells else None
    if scenario == "observed models":
        return _observed_key(cells["n_observed"]) if "n_observed" in cells else None
    if scenario == "benchmark":
        return cells["benchmark"].astype(str) if "benchmark" in cells else None
    if scenario == "post-training":
        if "instruct" not in cells:
            return None
        flag = cells["instruct"].astype(str).str.lower().isin(["true", "1", "1.0"])
        return pd.Series(np.where(flag, "instruct", "base"), index=cells.index, dtype=object)
    if scenario == "family kind":
        return cells["family_kind"].astype(str) if "family_kind" in cells else None
    if scenario == "release":
        if "release" not in cells:
            return None
        year = cells["release"].astype("string").str[:4]
        return year.astype(object).where(year.notna(), "unknown")
    raise ValueError(f"unknown scenario {scenario!r}: choose from {', '.join(GUIDANCE_SCENARIOS)}")


def _order(scenario: str, keys) -> list:
    keys = list(keys)
    if scenario == "distance":
        fixed = list(_DISTANCE_LABELS) + [_NO_MODEL]
    elif scenario == "observed models":
        fixed = ["0", "1", "2", "3-5", "6+", "unknown"]
    else:
        return sorted(keys, key=lambda k: (k == "unknown", str(k)))
    return [k for k in fixed if k in keys]


def _direction(c: pd.DataFrame) -> dict:
    """Over-estimation rate and mean signed error (points) of ``point`` and of the median."""
    truth = c["truth"].to_numpy(float)
    out: dict = {"n": int(np.isfinite(truth).sum())}
    for col, name in (("point", "point"), ("median", "median")):
        if col not in c:
            continue
        err = c[col].to_numpy(float) - truth
        ok = np.isfinite(err)
        out[f"over_rate_{name}"] = float((err[ok] > 0).mean()) if ok.any() else np.nan
        out[f"bias_{name}_points"] = float(100.0 * err[ok].mean()) if ok.any() else np.nan
    if "p_overestimate" in c:
        p = c["p_overestimate"].to_numpy(float)
        out["p_over_mean"] = float(np.nanmean(p)) if np.isfinite(p).any() else np.nan
    return out


def _protocol_blocks(cells: pd.DataFrame) -> list[tuple[str | None, pd.DataFrame]]:
    """The scored cells (a finite truth) per protocol, plus ``pooled`` when there are several."""
    c = cells[np.isfinite(pd.to_numeric(cells["truth"], errors="coerce").to_numpy(float))]
    blocks = list(_by_protocol(c)) or [(None, c)]
    if len(blocks) > 1:
        blocks.append(("pooled", c))
    return blocks


def _by_protocol(cells: pd.DataFrame):
    if "protocol" in cells and cells["protocol"].nunique() > 0:
        yield from cells.groupby("protocol", sort=False)


def guidance_table(cells: pd.DataFrame, scenarios: Sequence[str] | None = None) -> pd.DataFrame:
    """When are forecasts too high? Over-estimation rate and mean signed error of ``point``
    and of the posterior median, by scenario, from the cells of backtests.

    Parameters
    ----------
    cells : backtest cells (one row per scored cell: ``truth``, ``median``, ``point``,
        ``p_overestimate``; the scenario columns ``distance``, ``n_observed``, ``benchmark``,
        ``instruct``, ``family_kind``, ``release`` where present; ``protocol`` to split by).
        Cells of several sets are pooled as they are.
    scenarios : keys of :data:`GUIDANCE_SCENARIOS` (default: every one the cells allow).

    Returns
    -------
    DataFrame: ``protocol`` (when the cells have several or one), ``scenario``, ``key``
    (``all`` first), ``n``, ``over_rate_point`` / ``bias_point_points`` (share of cells where
    ``point`` is above the truth, mean ``point - truth`` in points), ``over_rate_median`` /
    ``bias_median_points`` (the same of the median) and ``p_over_mean`` (mean reported
    P(truth < point): compare with ``over_rate_point``). A well-centred median has
    ``over_rate_median`` near 0.5 in every row.
    """
    scenarios = list(scenarios or GUIDANCE_SCENARIOS)
    blocks = _protocol_blocks(cells)
    rows = []
    for proto, block in blocks:
        head = {} if proto is None else {"protocol": proto}
        rows.append({**head, "scenario": "all", "key": "all", **_direction(block)})
        for sc in scenarios:
            keys = _scenario_keys(block, sc)
            if keys is None:
                continue
            groups = {k: g for k, g in block.groupby(keys.to_numpy(), sort=False)}
            for k in _order(sc, groups):
                rows.append({**head, "scenario": sc, "key": str(k), **_direction(groups[k])})
    return pd.DataFrame(rows)


def signal_scores(cells: pd.DataFrame, *, bins: int = 10) -> pd.DataFrame:
    """How well ``p_overestimate`` tells whether ``point`` is above the truth.

    One row per protocol (when the cells have a ``protocol`` column; ``pooled`` over them
    too when there are several) and per ``set`` (``all sets`` first: every cell pooled;
    then each set when there are several):
    ``n``, ``over_rate_point`` (how often ``point`` was above the truth), ``p_over_mean``
    (the mean reported probability), ``auc``, ``brier``, ``ece`` (expected calibration error
    over ``bins`` equal-width bins, :func:`~sloth_bayes.metrics.reliability`) and
    ``over_rate_median`` (the median above the truth: 0.5 when not lopsided).
    """
    blocks = _protocol_blocks(cells)
    rows = []
    for proto, block in blocks:
        sets = [("all sets", block)]
        if "set" in block and block["set"].nunique() > 1:
            sets += list(block.groupby("set", sort=False))
        for set_name, b in sets:
            truth = b["truth"].to_numpy(float)
            point = b["point"].to_numpy(float)
            over = np.where(np.isfinite(point), point > truth, np.nan)
            rel = reliability(b["p_overestimate"], over, bins=bins)
            row = {} if proto is None else {"protocol": proto}
            row.update({"set": set_name, "n": int(np.isfinite(over).sum()),
                        "over_rate_point": float(np.nanmean(over)) if np.isfinite(over).any() else np.nan,
                        "p_over_mean": float(np.nanmean(b["p_overestimate"].to_numpy(float))) if len(b) else np.nan,
                        "auc": rel.auc, "brier": rel.brier, "ece": rel.calibration_error,
                        "over_rate_median": float(np.mean(b["median"].to_numpy(float) > truth)) if len(b) else np.nan})
            rows.append(row)
    return pd.DataFrame(rows)


def reliability_diagram(cells, outcome=None, *, ax=None, bins: int = 10, by: str | None = "protocol"):
    """Reliability diagram of ``p_overestimate``: per bin of the reported probability, how
    often ``point`` was above the truth (one line per ``by`` value, e.g. protocol, with its
    AUC and ECE in the legend); the diagonal is perfect calibration, marker area the cells.

    ``cells``: backtest cells (``p_overestimate``, ``point``, ``truth``), or an array of
    probabilities with ``outcome`` the 0/1 events. Returns the Axes.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 5))
    if outcome is not None:
        series = [("", np.asarray(cells, dtype=float), np.asarray(outcome, dtype=float))]
    else:
        c = cells[np.isfinite(pd.to_numeric(cells["truth"], errors="coerce").to_numpy(float))]

        def events(b):
            point, truth = b["point"].to_numpy(float), b["truth"].to_numpy(float)
            return b["p_overestimate"].to_numpy(float), np.where(np.isfinite(point), point > truth, np.nan)

        groups = list(c.groupby(by, sort=False)) if by and by in c and c[by].nunique() > 1 else []
        series = [(str(k), *events(g)) for k, g in groups] + [("all cells" if groups else "", *events(c))]
    ax.plot([0, 1], [0, 1], color="0.6", lw=1, ls="--", zorder=0)
    for label, p, o in series:
        rel = reliability(p, o, bins=bins)
        t = rel.table
        text = f"AUC {rel.auc:.2f}, ECE {rel.calibration_error:.3f}, n {int(t['n'].sum()) if len(t) else 0}"
        line = ax.plot(t["predicted"], t["observed"], marker="", lw=1.5,
                       label=f"{label}: {text}" if label else text)[0]
        ax.scatter(t["predicted"], t["observed"], s=12 + 200 * t["n"] / max(t["n"].sum(), 1),
                   color=line.get_color(), alpha=0.8, zorder=3)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")
    ax.set_xlabel("reported P(truth < point)  [p_overestimate]")
    ax.set_ylabel("observed share with point above the truth")
    ax.set_title("Does p_overestimate tell the direction?")
    ax.legend(loc="upper left", fontsize=8, frameon=False)
    return ax


# -- several backtests together -----------------------------------------------------------------
def read_backtests(folders: Sequence) -> pd.DataFrame:
    """The cells of several backtest folders (``cells.csv`` of ``sloth-bayes backtest``),
    with a ``protocol`` column (the folder name when the cells have none)."""
    parts = []
    for folder in folders:
        folder = Path(folder)
        cells = pd.read_csv(folder / "cells.csv")
        if "protocol" not in cells:
            cells.insert(0, "protocol", folder.name)
        parts.append(cells)
    if not parts:
        raise ValueError("no backtest folder given")
    return pd.concat(parts, ignore_index=True)


def _fixed(df: pd.DataFrame, digits: int) -> pd.DataFrame:
    """Float columns as fixed-decimal strings (blank for NaN), for tables that line up."""
    out = df.copy()
    for col in out.columns:
        if pd.api.types.is_float_dtype(out[col]):
            out[col] = [f"{v:.{digits}f}" if np.isfinite(v) else "" for v in out[col].to_numpy(float)]
    return out


def guidance_markdown(cells: pd.DataFrame, *, digits: int = 3) -> str:
    """The signal scores and the guidance table of backtest cells as Markdown sections."""
    from .report import render_table

    out = [
        "## Does `p_overestimate` tell the direction?",
        "",
        "`p_overestimate` = P(truth < `point`) against the event \"`point` above the truth\" "
        "(`point`: the classic point skills law fitted on the same table). AUC 0.5 = a coin; "
        "ECE over 10 equal-width bins. `over_rate_median`: share of cells whose posterior "
        "median is above the truth (0.5 when not lopsided).",
        "",
        render_table(_fixed(signal_scores(cells), digits)),
        "## When is a forecast too high?",
        "",
        "Share of cells over-estimated (`over_rate_*`) and mean signed error in points "
        "(`bias_*_points`, forecast - truth) of `point` and of the posterior median, by "
        "scenario; `p_over_mean` is the mean reported P(truth < point).",
        "",
    ]
    table = guidance_table(cells)
    for sc in ["all", *GUIDANCE_SCENARIOS]:
        rows = table[table["scenario"] == sc].drop(columns=["scenario"])
        if rows.empty:
            continue
        title = "All cells" if sc == "all" else f"By {sc} ({GUIDANCE_SCENARIOS[sc]})"
        out += [f"### {title}", "", render_table(_fixed(rows, digits))]
    return "\n".join(out)


def write_guidance(folders: Sequence, out_md, *, figure=None) -> list[Path]:
    """Write :func:`guidance_markdown` of the backtest ``folders`` to ``out_md`` and, with
    ``figure``, the :func:`reliability_diagram` as a PNG. Returns the paths written."""
    from .utils import atomic_path, atomic_write

    cells = read_backtests(folders)
    written = []
    with atomic_write(out_md) as fh:
        fh.write(guidance_markdown(cells))
    written.append(Path(out_md))
    if figure is not None:
        from matplotlib.figure import Figure

        fig = Figure(figsize=(6, 6))  # no pyplot: no window, no global backend change
        reliability_diagram(cells, ax=fig.subplots())
        with atomic_path(Path(figure)) as tmp:
            fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
        written.append(Path(figure))
    return written
