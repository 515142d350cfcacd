"""Posterior diagnostics, model comparison and skill interpretation, on ArviZ 1.x.

* :func:`convergence_report`: divergences, R-hat, bulk/tail ESS, E-BFMI, tree-depth
  saturation, and chains that settled in different solutions (different mean log density),
  with plain-language advice; :func:`summary_table`: ``az.summary`` with a stated interval.
* :func:`loo` / :func:`compare`: PSIS-LOO from the per-cell log-likelihood of a fit, with
  the Pareto-k warnings named by LLM and benchmark; :func:`loo_pit`: each cell's
  leave-one-out PIT (is the noise model calibrated for a benchmark, a family, base or
  instruct models?), a cell table for ``plots.calibration_curve`` / ``plots.pit_histogram``.
* :func:`loadings_table`, :func:`varimax_rotation`, :func:`skill_correlation`: what the
  skills are.

Command line: ``sloth-bayes diagnose FIT.nc`` (exit status 0 when converged, 1 when not)
and ``sloth-bayes compare FIT1.nc FIT2.nc ...``.

>>> from sloth_bayes.diagnostics import convergence_report
>>> report = convergence_report(model.idata_)                     # doctest: +SKIP
>>> print(report.text()); report.ok                               # doctest: +SKIP
"""

from __future__ import annotations

import itertools
import sys
import warnings
from dataclasses import dataclass, field

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

__all__ = [
    "ConvergenceReport",
    "LooReport",
    "compare",
    "convergence_report",
    "loadings_table",
    "loo",
    "loo_pit",
    "register_cli",
    "skill_correlation",
    "summary_table",
    "varimax_rotation",
]

SAMPLE_DIMS = ("chain", "draw")
#: Standard-normal offsets of the non-centred parameterisation: sampled, not interpreted.
OFFSET_PREFIX = "z_"
#: Spread of chain mean log densities, in Monte Carlo standard errors, that flags chains
#: sitting in different solutions (together with R-hat of ``lp`` above ``rhat_max``).
LP_SPREAD_MCSE = 5.0


def _quiet(fn, *args, **kwargs):
    """Call an ArviZ function without its RuntimeWarnings on constant (fixed) entries."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return fn(*args, **kwargs)


def _posterior(idata) -> xr.Dataset:
    post = idata["posterior"] if "posterior" in idata.children else idata
    return post.to_dataset() if isinstance(post, xr.DataTree) else post


def _sample_stats(idata) -> xr.Dataset | None:
    if isinstance(idata, xr.DataTree) and "sample_stats" in idata.children:
        return idata["sample_stats"].to_dataset()
    return None


# --- convergence ---------------------------------------------------------------------------------
@dataclass
class ConvergenceReport:
    """Convergence of a fit, held as data (see :func:`convergence_report`).

    Attributes
    ----------
    ok : every check passed (divergences, R-hat, ESS, E-BFMI, chains agree).
    n_chains, n_draws : draws per chain.
    divergences : divergent transitions after warm-up (all chains).
    max_rhat, max_rhat_parameter : worst rank-normalised split R-hat and where.
    min_ess_bulk, min_ess_tail (+ ``_parameter``) : smallest effective sample sizes.
    bfmi : E-BFMI per chain (empty when the energy was not stored).
    tree_depth_share : share of transitions that hit the maximum tree depth.
    lp_chain_means, lp_chain_mcse : mean log density per chain and its Monte Carlo SE.
    lp_rhat : R-hat of the log density.
    chains_disagree : chains sit at different mean log densities (different solutions).
    groups : one row per posterior variable: ``size`` (free entries), ``max_rhat``,
        ``min_ess_bulk``, ``min_ess_tail``, ``n_rhat_high``; fixed entries (e.g. anchor
        loadings at 0 or 1) are left out.
    warnings : plain-language messages naming what to try.
    thresholds : the limits used.
    """

    ok: bool
    n_chains: int
    n_draws: int
    divergences: int
    max_rhat: float
    max_rhat_parameter: str
    min_ess_bulk: float
    min_ess_bulk_parameter: str
    min_ess_tail: float
    min_ess_tail_parameter: str
    bfmi: list[float]
    tree_depth_share: float
    lp_chain_means: list[float]
    lp_chain_mcse: list[float]
    lp_rhat: float
    chains_disagree: bool
    groups: pd.DataFrame
    warnings: list[str] = field(default_factory=list)
    thresholds: dict = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        """One row per check: ``value``, ``threshold``, ``ok``."""
        t = self.thresholds
        bfmi_min = min(self.bfmi) if self.bfmi else np.nan
        rows = [
            ("divergences", self.divergences, 0, self.divergences == 0),
            ("max_rhat", self.max_rhat, t["rhat_max"], not self.max_rhat > t["rhat_max"]),
            ("min_ess_bulk", self.min_ess_bulk, t["ess_min"], not self.min_ess_bulk < t["ess_min"]),
            ("min_ess_tail", self.min_ess_tail, t["ess_min"], not self.min_ess_tail < t["ess_min"]),
            ("min_bfmi", bfmi_min, t["bfmi_min"], not bfmi_min < t["bfmi_min"]),
            ("tree_depth_share", self.tree_depth_share, np.nan, True),
            ("lp_rhat", self.lp_rhat, t["rhat_max"], not self.chains_disagree),
        ]
        return pd.DataFrame(rows, columns=["check", "value", "threshold", "ok"]).set_index("check")

    def text(self) -> str:
        """Printable report: verdict, key numbers, warnings."""
        head = "Converged: all checks passed." if self.ok else "NOT converged: see the warnings below."
        bfmi = ", ".join(f"{b:.2f}" for b in self.bfmi) or "n/a (no energy stored)"
        lp = ", ".join(f"{m:.1f}" for m in self.lp_chain_means) or "n/a"
        lines = [
            head,
            f"  {self.n_chains} chains x {self.n_draws} draws; divergences: {self.divergences}",
            f"  max R-hat {self.max_rhat:.3f} ({self.max_rhat_parameter}); "
            f"min ESS bulk {self.min_ess_bulk:.0f} ({self.min_ess_bulk_parameter}), "
            f"tail {self.min_ess_tail:.0f} ({self.min_ess_tail_parameter})",
            f"  E-BFMI per chain: {bfmi}; max tree depth reached in {100 * self.tree_depth_share:.1f}% "
            "of transitions",
            f"  mean log density per chain: {lp} (R-hat {self.lp_rhat:.3f})",
        ]
        lines += [f"- {w}" for w in self.warnings]
        return "\n".join(lines)


def _finite_elements(ds: xr.Dataset) -> dict[str, xr.DataArray]:
    """Per variable, a mask of the entries that vary across draws (fixed ones are no parameters)."""
    return {name: (da.std(SAMPLE_DIMS) > 0) for name, da in ds.data_vars.items()}


def _worst(values: dict[str, xr.DataArray], masks, largest: bool) -> tuple[float, str]:
    best, where = np.nan, ""
    for name, da in values.items():
        v = da.where(masks[name])
        if not np.isfinite(v.values).any():
            continue
        flat = v.values.ravel()
        i = int(np.nanargmax(flat) if largest else np.nanargmin(flat))
        if np.isfinite(best) and ((flat[i] <= best) if largest else (flat[i] >= best)):
            continue
        best = float(flat[i])
        idx = np.unravel_index(i, v.shape)
        labels = [str(v[d].values[j]) if d in v.coords else str(j) for d, j in zip(v.dims, idx)]
        where = f"{name}[{', '.join(labels)}]" if labels else name
    return best, where


def checked_parameters(idata, var_names=None) -> tuple[xr.Dataset, dict[str, xr.DataArray]]:
    """The posterior variables the convergence check looks at (``var_names``, default all but
    the free-loading sites: ``loadings`` holds their entries again; and the unfolded sites
    of folded parameters, whose sign no chain's likelihood sees), and per variable the mask
    of its entries that vary."""
    post = _posterior(idata)
    if var_names is not None:
        post = post[list(var_names)]
    else:
        drop = [v for v in post.data_vars if str(v).endswith("_unfolded")]
        if "loadings" in post:
            drop.append("loadings_free")
        post = post.drop_vars([v for v in drop if v in post])
    return post, _finite_elements(post)


def convergence_report(
    idata, *, rhat_max: float = 1.01, ess_min: float = 400, bfmi_min: float = 0.3, var_names=None
) -> ConvergenceReport:
    """Check a fit's convergence and say, in plain words, what to try when it fails.

    Parameters
    ----------
    idata : DataTree with a ``posterior`` group (and ideally ``sample_stats`` with
        ``diverging``, ``energy``, ``reached_max_tree_depth``, ``lp``).
    rhat_max, ess_min, bfmi_min : limits (Vehtari et al. 2021; Betancourt 2016).
    var_names : posterior variables to check (default: all).

    Returns
    -------
    ConvergenceReport
    """
    post, masks = checked_parameters(idata, var_names)
    n_chains, n_draws = int(post.sizes["chain"]), int(post.sizes["draw"])
    rhat = _quiet(az.rhat, post) if n_chains > 1 else post.isel(chain=0, draw=0) * np.nan
    ess_bulk = _quiet(az.ess, post, method="bulk")
    ess_tail = _quiet(az.ess, post, method="tail")
    rhat_vars = {k: rhat[k] for k in post.data_vars}
    max_rhat, rhat_where = _worst(rhat_vars, masks, largest=True)
    min_bulk, bulk_where = _worst({k: ess_bulk[k] for k in post.data_vars}, masks, largest=False)
    min_tail, tail_where = _worst({k: ess_tail[k] for k in post.data_vars}, masks, largest=False)

    rows = []
    for name in post.data_vars:
        m = masks[name]
        size = int(m.sum())
        if size == 0:
            continue
        r, eb, et = (
            rhat[name].where(m).values,
            ess_bulk[name].where(m).values,
            ess_tail[name].where(m).values,
        )
        rows.append(
            {
                "variable": name,
                "size": size,
                "max_rhat": float(np.nanmax(r)) if np.isfinite(r).any() else np.nan,
                "min_ess_bulk": float(np.nanmin(eb)) if np.isfinite(eb).any() else np.nan,
                "min_ess_tail": float(np.nanmin(et)) if np.isfinite(et).any() else np.nan,
                "n_rhat_high": int(np.nansum(r > rhat_max)),
            }
        )
    groups = pd.DataFrame(
        rows, columns=["variable", "size", "max_rhat", "min_ess_bulk", "min_ess_tail", "n_rhat_high"]
    )
    groups = groups.set_index("variable")

    stats = _sample_stats(idata)
    divergences, tree_share, bfmi = 0, np.nan, []
    lp_means, lp_mcse, lp_rhat, disagree = [], [], np.nan, False
    notes = []
    if stats is not None and "diverging" in stats:
        divergences = int(stats["diverging"].sum())
    else:
        notes.append(
            "no divergence information stored (sample_stats.diverging): divergences not checked."
        )
    if stats is not None and "reached_max_tree_depth" in stats:
        tree_share = float(stats["reached_max_tree_depth"].mean())
    if stats is not None and "energy" in stats:
        bfmi = [float(v) for v in np.ravel(_quiet(az.bfmi, stats)["energy"].values)]
    if stats is not None and "lp" in stats:
        lp = stats["lp"].astype(float)
        lp_means = [float(v) for v in lp.mean("draw").values]
        for c in range(lp.sizes["chain"]):
            one = lp.isel(chain=[c])
            ess_c = float(_quiet(az.ess, one.values, method="mean"))
            lp_mcse.append(float(one.std()) / np.sqrt(max(ess_c, 1.0)) if np.isfinite(ess_c) else np.nan)
        if n_chains > 1:
            lp_rhat = float(_quiet(az.rhat, lp))
            hi, lo = int(np.argmax(lp_means)), int(np.argmin(lp_means))
            spread = lp_means[hi] - lp_means[lo]
            se = float(np.hypot(lp_mcse[hi], lp_mcse[lo]))
            disagree = bool(spread > LP_SPREAD_MCSE * se and lp_rhat > rhat_max)

    msgs = []
    if divergences:
        share = divergences / (n_chains * n_draws)
        msgs.append(
            f"{divergences} divergent transitions ({100 * share:.1f}% of draws): the sampler could not "
            "follow the posterior's curvature somewhere, so the draws may be biased. Try a higher "
            "target_accept (0.95-0.99) and a longer warmup; if they persist, a hierarchical scale is "
            "probably funnelling (few families) - try fewer skills or a simpler model."
        )
    if disagree:
        listed = ", ".join(f"{m:.1f}" for m in lp_means)
        msgs.append(
            f"Chains sit at different mean log densities ({listed}; spread {spread:.1f}, about "
            f"{spread / se:.0f} Monte Carlo SEs; R-hat of lp {lp_rhat:.2f}): they found different "
            "solutions (e.g. different skill sets). Do not pool them: refit with more SVI restarts "
            "(svi_restarts) and a longer warmup, choose other anchors (ModelConfig(anchors=...)), "
            "or fit fewer skills."
        )
    if max_rhat > rhat_max:
        msgs.append(
            f"R-hat up to {max_rhat:.3f} at {rhat_where} (limit {rhat_max}): the chains do not "
            "agree yet. Run a longer warmup and more draws; if R-hat stays high for loadings or "
            "skills, the skills are not identified - fewer skills or different anchors."
        )
    if min_bulk < ess_min:
        msgs.append(
            f"Bulk ESS as low as {min_bulk:.0f} at {bulk_where} (want >= {ess_min:.0f}): posterior "
            "means are noisy. Draw more (draws=), or more chains."
        )
    if min_tail < ess_min:
        msgs.append(
            f"Tail ESS as low as {min_tail:.0f} at {tail_where} (want >= {ess_min:.0f}): interval "
            "ends are noisy. Draw more (draws=), or more chains."
        )
    low_bfmi = [c for c, b in enumerate(bfmi) if b < bfmi_min]
    if low_bfmi:
        msgs.append(
            f"E-BFMI below {bfmi_min} in chain(s) {', '.join(map(str, low_bfmi))}: the sampler explores "
            "the energy distribution poorly (heavy tails or a funnel). Use a longer warmup; if it "
            "persists, the model needs reparameterising (tighter priors on hierarchical scales)."
        )
    if np.isfinite(tree_share) and tree_share > 0.01:
        msgs.append(
            f"{100 * tree_share:.0f}% of transitions hit the maximum tree depth: sampling is slow and "
            "may explore little per draw. Raise max_tree_depth, or look for badly scaled or strongly "
            "correlated parameters (an efficiency issue, not by itself a bias)."
        )
    msgs += notes
    ok = (
        divergences == 0
        and not max_rhat > rhat_max
        and not min_bulk < ess_min
        and not min_tail < ess_min
        and not low_bfmi
        and not disagree
    )
    return ConvergenceReport(
        ok=bool(ok),
        n_chains=n_chains,
        n_draws=n_draws,
        divergences=divergences,
        max_rhat=max_rhat,
        max_rhat_parameter=rhat_where,
        min_ess_bulk=min_bulk,
        min_ess_bulk_parameter=bulk_where,
        min_ess_tail=min_tail,
        min_ess_tail_parameter=tail_where,
        bfmi=bfmi,
        tree_depth_share=tree_share,
        lp_chain_means=lp_means,
        lp_chain_mcse=lp_mcse,
        lp_rhat=lp_rhat,
        chains_disagree=disagree,
        groups=groups,
        warnings=msgs,
        thresholds={"rhat_max": rhat_max, "ess_min": ess_min, "bfmi_min": bfmi_min},
    )


def summary_table(idata, prob: float = 0.9, *, var_names=None, round_to="none") -> pd.DataFrame:
    """``az.summary`` with a stated central interval (equal-tailed, ``prob``).

    Columns ``mean, sd, eti90_lb, eti90_ub, ess_bulk, ess_tail, r_hat, mcse_mean, mcse_sd``
    (for ``prob=0.9``). By default the interpretable variables: everything except the
    standard-normal offsets ``z_*`` of the non-centred parameterisation.
    """
    if var_names is None:
        var_names = [v for v in _posterior(idata).data_vars if not v.startswith(OFFSET_PREFIX)]
    return _quiet(
        az.summary, idata, var_names=list(var_names), ci_prob=prob, ci_kind="eti", round_to=round_to
    )


# --- LOO and comparison ---------------------------------------------------------------------------
@dataclass
class LooReport:
    """PSIS-LOO of a fit: ArviZ's result (``elpd``) plus the cells with high Pareto k.

    Attributes
    ----------
    elpd : ``arviz_stats`` ELPD object (``elpd``, ``se``, ``p``, ``pareto_k`` per cell...).
    pareto_k : one row per observed cell: ``llm``, ``benchmark``, ``pareto_k``, sorted by k.
    warnings : plain-language messages (cells whose LOO estimate is unreliable).
    """

    elpd: object
    pareto_k: pd.DataFrame
    warnings: list[str]

    @property
    def elpd_loo(self) -> float:
        return float(self.elpd.elpd)

    @property
    def se(self) -> float:
        return float(self.elpd.se)

    @property
    def p_loo(self) -> float:
        return float(self.elpd.p)

    def text(self) -> str:
        lines = [
            f"elpd_loo {self.elpd_loo:.1f} (SE {self.se:.1f}), p_loo {self.p_loo:.1f}, "
            f"{len(self.pareto_k)} cells; Pareto k <= {self.elpd.good_k:.2f} for "
            f"{int((self.pareto_k['pareto_k'] <= self.elpd.good_k).sum())} of them."
        ]
        return "\n".join(lines + [f"- {w}" for w in self.warnings])


def _cell_labels(idata, n: int) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(idata, xr.DataTree) and "constant_data" in idata.children:
        cd = idata["constant_data"]
        if "cell_llm" in cd and "cell_benchmark" in cd:
            return np.asarray(cd["cell_llm"].values).astype(str), np.asarray(
                cd["cell_benchmark"].values
            ).astype(str)
    return np.array([str(i) for i in range(n)]), np.array([""] * n)


def loo(idata, *, var_name: str = "y") -> LooReport:
    """PSIS-LOO-CV from the per-cell log-likelihood stored in a fit (``az.loo``).

    Cells with Pareto k above ArviZ's threshold (``good_k``, 0.7 or less) are named by
    LLM and benchmark in ``warnings``: their leave-one-out estimate is unreliable (the
    cell is highly influential; typically a model seen through few cells).
    """
    if not (isinstance(idata, xr.DataTree) and "log_likelihood" in idata.children):
        raise ValueError("the fit has no log_likelihood group: LOO needs the per-cell log-likelihood")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = az.loo(idata, pointwise=True, var_name=var_name)
    k = np.asarray(res.pareto_k.values, float).ravel()
    llm, bench = _cell_labels(idata, len(k))
    table = pd.DataFrame({"llm": llm, "benchmark": bench, "pareto_k": k}).sort_values(
        "pareto_k", ascending=False
    )
    msgs = []
    good = float(res.good_k)
    bad = table[table["pareto_k"] > good]
    if len(bad):
        worst = ", ".join(
            f"{r.llm}/{r.benchmark} (k={r.pareto_k:.2f})" for r in bad.head(5).itertuples()
        )
        very = int((bad["pareto_k"] > 1).sum())
        msgs.append(
            f"{len(bad)} of {len(table)} cells have Pareto k > {good:.2f} (worst: {worst})"
            + (f"; {very} above 1" if very else "")
            + ": their leave-one-out estimate is unreliable, so elpd_loo may be optimistic. "
            "These cells are highly influential (e.g. an LLM or family seen through few scores); "
            "compare models with K-fold or a held-out-family backtest, or draw more."
        )
    for w in caught:
        text = str(w.message)
        if "pareto" not in text.lower() and "Estimated shape" not in text:
            msgs.append(f"ArviZ: {text}")
    return LooReport(elpd=res, pareto_k=table.reset_index(drop=True), warnings=msgs)


def loo_pit(idata, *, seed: int = 0) -> pd.DataFrame:
    """Leave-one-cell-out PIT of every observed cell (``arviz_stats.loo_pit``: PSIS weights
    from the per-cell log-likelihood, replicated scores from the model's own predictive,
    ``plots.posterior_predictive_cells``; ties at a censored 0 or 1 broken at random with
    ``seed``).

    One row per cell: ``llm``, ``benchmark``, ``family`` (coarse), ``family2``,
    ``instruct``, ``observed``, ``pit``, ``pareto_k``. A calibrated noise model gives PITs
    uniform on [0, 1] within any group of cells chosen without looking at them: the
    central 50% interval, ``|pit - 0.5| <= 0.25``, holds about half of a benchmark's
    cells. The table goes straight into ``plots.calibration_curve(table, by="benchmark")``
    and ``plots.pit_histogram``. Cells with ``pareto_k`` above ~0.7 have unreliable
    weights (see :func:`loo`). This checks the fit's cells, not forecasts beyond them:
    that is the backtest's job.
    """
    import arviz_stats as azs

    from .plots import posterior_predictive_cells

    if not (isinstance(idata, xr.DataTree) and "log_likelihood" in idata.children):
        raise ValueError("the fit has no log_likelihood group: LOO-PIT needs the per-cell log-likelihood")
    pp = posterior_predictive_cells(idata, seed=seed)
    tree = xr.DataTree.from_dict(
        {
            "posterior": idata["posterior"].to_dataset(),
            "posterior_predictive": pp[["y"]].drop_vars("benchmark"),
            "log_likelihood": idata["log_likelihood"].to_dataset()[["y"]],
            "observed_data": idata["observed_data"].to_dataset()[["y"]],
        }
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pareto-k warnings: reported per cell below
        res = az.loo(tree, pointwise=True, var_name="y")  # PSIS once, its weights reused
        pit = azs.loo_pit(
            tree,
            var_names="y",
            log_weights=xr.Dataset({"y": res.log_weights}),
            pareto_k=xr.Dataset({"y": res.pareto_k}),
            random_state=seed,
        )["y"]
    cd = idata["constant_data"]
    llm, bench = _cell_labels(idata, pit.sizes["cell"])
    row = pd.Index(np.asarray(cd["llm"].values).astype(str)).get_indexer(llm)
    return pd.DataFrame(
        {
            "llm": llm,
            "benchmark": bench,
            "family": np.asarray(cd["llm_coarse_family"].values).astype(str)[row],
            "family2": np.asarray(cd["llm_family"].values).astype(str)[row],
            "instruct": np.asarray(cd["llm_instruct"].values)[row] > 0.5,
            "observed": np.asarray(idata["observed_data"]["y"].values, float),
            "pit": np.asarray(pit.values, float),
            "pareto_k": np.asarray(res.pareto_k.values, float).ravel(),
        }
    )


def compare(fits: dict, *, var_name: str = "y", round_to="none") -> pd.DataFrame:
    """ELPD (PSIS-LOO) comparison of fits of the same table (``az.compare``).

    Returns ArviZ's comparison frame (best first: ``rank, elpd, p, elpd_diff, weight, se,
    dse, warning``...); ``frame.attrs["warnings"]`` lists the Pareto-k warnings per fit and
    ``frame.attrs["loo"]`` the :class:`LooReport` of each fit.
    """
    if len(fits) < 2:
        raise ValueError("compare needs at least two fits")
    reports = {name: loo(fit, var_name=var_name) for name, fit in fits.items()}
    sizes = {name: len(r.pareto_k) for name, r in reports.items()}
    if len(set(sizes.values())) > 1:
        raise ValueError(
            f"the fits have different numbers of observed cells ({sizes}): LOO compares models "
            "fitted to the same table"
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frame = az.compare({name: r.elpd for name, r in reports.items()}, round_to=round_to)
    frame.attrs["warnings"] = [f"{name}: {w}" for name, r in reports.items() for w in r.warnings]
    frame.attrs["loo"] = reports
    return frame


# --- skills interpretation ------------------------------------------------------------------------
def _interval_names(prob: float) -> tuple[str, str]:
    pct = f"{100 * prob:g}"
    return f"lower_{pct}", f"upper_{pct}"


def loadings_table(idata, prob: float = 0.9) -> pd.DataFrame:
    """Loadings per benchmark x skill: posterior ``mean``, central interval, ``fixed``
    (anchor entries fixed at 0 or 1 by the identification constraint)."""
    da = _posterior(idata)["loadings"]
    lo_name, hi_name = _interval_names(prob)
    q = da.quantile([(1 - prob) / 2, (1 + prob) / 2], dim=SAMPLE_DIMS)
    out = pd.DataFrame(
        {
            "mean": da.mean(SAMPLE_DIMS).to_series(),
            lo_name: q.isel(quantile=0, drop=True).to_series(),
            hi_name: q.isel(quantile=1, drop=True).to_series(),
            "fixed": (da.std(SAMPLE_DIMS) == 0).to_series(),
        }
    )
    return out.reset_index()


def _varimax(loadings: np.ndarray, gamma: float = 1.0, max_iter: int = 500, tol: float = 1e-10):
    """Varimax rotation of a batch of loading matrices (..., p, k): (rotated, rotations)."""
    L = np.asarray(loadings, float)
    p, k = L.shape[-2:]
    R = np.broadcast_to(np.eye(k), L.shape[:-2] + (k, k)).copy()
    d = np.zeros(L.shape[:-2])
    for _ in range(max_iter):
        lam = L @ R
        colsq = np.einsum("...pk,...pk->...k", lam, lam)
        target = lam**3 - (gamma / p) * lam * colsq[..., None, :]
        u, s, vt = np.linalg.svd(np.swapaxes(L, -1, -2) @ target)
        R = u @ vt
        d_new = s.sum(-1)
        if np.all(d_new <= d * (1 + tol)):
            break
        d = d_new
    return L @ R, R


def _align(rotated: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Permute and flip the columns of each (…, p, k) matrix to best match ``reference``."""
    k = reference.shape[-1]
    cross = np.einsum("pi,...pj->...ij", reference, rotated)  # (..., k_ref, k_draw)
    perms = list(itertools.permutations(range(k)))
    scores = np.stack([np.abs(cross[..., np.arange(k), list(p)]).sum(-1) for p in perms], -1)
    best = np.asarray(perms)[scores.argmax(-1)]  # (..., k)
    out = np.take_along_axis(rotated, best[..., None, :].repeat(rotated.shape[-2], -2), -1)
    signs = np.sign(np.take_along_axis(cross, best[..., :, None], -1)[..., 0])
    signs[signs == 0] = 1.0
    return out * signs[..., None, :]


def varimax_rotation(idata, *, gamma: float = 1.0) -> xr.DataArray:
    """Varimax-rotated loadings, draw by draw, aligned across draws.

    The anchor constraint identifies the skills but need not make them interpretable;
    varimax rotates each draw's loadings to a simple structure (each benchmark loading on
    few skills). A rotation of a draw is only defined up to the order and sign of its
    columns, so each draw is permuted and flipped to match the varimax rotation of the
    posterior mean loadings. The skills are rotated with the loadings (``theta R``), so the
    fit's predictions do not change. Rotated loadings may be negative.

    Returns
    -------
    xarray.DataArray ``loadings_rotated`` with dims (chain, draw, benchmark, skill).
    """
    da = _posterior(idata)["loadings"].transpose("chain", "draw", "benchmark", "skill")
    values = da.values.astype(float)
    if values.shape[-1] == 1:
        rotated = values.copy()
    else:
        reference, _ = _varimax(values.mean((0, 1)), gamma=gamma)
        # orient the reference: every skill's largest loading positive
        flip = np.sign(reference[np.abs(reference).argmax(0), np.arange(reference.shape[1])])
        reference = reference * np.where(flip == 0, 1.0, flip)
        rotated, _ = _varimax(values, gamma=gamma)
        rotated = _align(rotated, reference)
    return xr.DataArray(rotated, coords=da.coords, dims=da.dims, name="loadings_rotated")


def skill_correlation(idata, prob: float = 0.9, *, var_name: str = "alpha") -> pd.DataFrame:
    """Correlation across families of their efficiencies, per draw, summarised.

    For every draw, the correlation between skills of ``alpha`` (sub-family efficiencies,
    family x skill) across families; one row per pair of skills with the posterior ``mean``
    and central interval. Strongly correlated skills say the same thing about families
    (consider fewer skills).
    """
    da = _posterior(idata)[var_name]
    other = [d for d in da.dims if d not in (*SAMPLE_DIMS, "skill")][0]
    a = da.transpose("chain", "draw", other, "skill").values.astype(float)
    a = a - a.mean(-2, keepdims=True)
    cov = np.einsum("cdfi,cdfj->cdij", a, a)
    sd = np.sqrt(np.einsum("cdii->cdi", cov))
    corr = cov / (sd[..., :, None] * sd[..., None, :])
    skills = [str(s) for s in da["skill"].values]
    lo_name, hi_name = _interval_names(prob)
    rows = []
    for i, j in itertools.combinations(range(len(skills)), 2):
        v = corr[..., i, j].ravel()
        v = v[np.isfinite(v)]
        rows.append(
            {
                "skill_a": skills[i],
                "skill_b": skills[j],
                "mean": float(v.mean()) if len(v) else np.nan,
                lo_name: float(np.quantile(v, (1 - prob) / 2)) if len(v) else np.nan,
                hi_name: float(np.quantile(v, (1 + prob) / 2)) if len(v) else np.nan,
            }
        )
    return pd.DataFrame(rows, columns=["skill_a", "skill_b", "mean", lo_name, hi_name])


# --- command line --------------------------------------------------------------------------------
def cmd_diagnose(args) -> int:
    from .io import load_fit
    from .utils import atomic_write

    idata = load_fit(args.fit)
    report = convergence_report(idata, rhat_max=args.rhat_max, ess_min=args.ess_min)
    table = summary_table(idata, prob=args.prob)
    print(report.text())
    print()
    with pd.option_context("display.width", 160, "display.max_rows", args.max_rows):
        print(table.to_string(float_format=lambda v: f"{v:.3g}", max_rows=args.max_rows))
    if args.out:
        with atomic_write(args.out) as fh:
            table.to_csv(fh)
        print(f"summary -> {args.out}")
    return 0 if report.ok else 1


def cmd_compare(args) -> int:
    from pathlib import Path

    from .io import load_fit

    names = args.names or [Path(p).stem for p in args.fits]
    if len(names) != len(args.fits):
        raise SystemExit("--names needs one name per fit")
    if len(set(names)) != len(names):
        names = [f"{n}_{i}" for i, n in enumerate(names)]
    try:
        frame = compare({n: load_fit(p) for n, p in zip(names, args.fits)})
    except ValueError as exc:  # fits of different tables, or fewer than two
        print(f"error: {exc}", file=sys.stderr)
        return 2
    with pd.option_context("display.width", 160):
        print(frame.to_string(float_format=lambda v: f"{v:.2f}"))
    for w in frame.attrs["warnings"]:
        print(f"- {w}")
    return 0


def register_cli(subparsers) -> None:
    p = subparsers.add_parser(
        "diagnose",
        help="convergence report and posterior summary of a saved fit (exit 1 if not converged)",
    )
    p.add_argument("fit", help="netCDF file written by `fit`")
    p.add_argument("--out", default=None, help="write the summary table to this CSV")
    p.add_argument("--prob", type=float, default=0.9, help="central interval probability")
    p.add_argument("--rhat-max", type=float, default=1.01)
    p.add_argument("--ess-min", type=float, default=400)
    p.add_argument("--max-rows", type=int, default=60, help="rows of the summary to print")
    p.set_defaults(func=cmd_diagnose)

    p = subparsers.add_parser("compare", help="PSIS-LOO comparison of fits of the same table")
    p.add_argument("fits", nargs="+", help="two or more netCDF fits")
    p.add_argument("--names", nargs="+", default=None, help="model names (default: file names)")
    p.set_defaults(func=cmd_compare)
