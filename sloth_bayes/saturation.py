"""Do skills saturate? Gains per doubling along a size path, and where they stop.

For a path of model sizes (a sub-family's law, or the population's: a typical new family),
the model itself is run on rows along the path (:func:`~sloth_bayes.predictive.model_draws`),
once per posterior draw, at each size and half a step either side in parameters and in
tokens. That gives, per skill (logits) and per benchmark (expected score, noise left out):

* the trajectory, and the gain per doubling of parameters (tokens held) and of tokens
  (parameters held), with credible intervals (:func:`gains`);
* the *saturation size*: the size from which the gain per doubling of parameters stays below
  a threshold up to the end of the range, with a credible interval, or "not saturated within
  the range" (:func:`saturation`); and a figure (:func:`plot_saturation`).

A skill's gain shrinks only where the fit's skills may saturate
(``ModelConfig(saturation=True)``); a benchmark's also shrinks as its score nears its ceiling
(or sits at its floor), which the linear law of skills already does.

>>> from sloth_bayes.saturation import saturation, plot_saturation
>>> saturation(model, threshold=0.01, size_range=(1, 1000))       # doctest: +SKIP
>>> ax = plot_saturation(model, what="skills")                     # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .data import FAMILY, INSTRUCT, MODEL, SIZE, SUBFAMILY, TOKENS

__all__ = ["SizePath", "gains", "plot_saturation", "saturation", "size_path"]

#: Half-width of the finite differences (doublings): gains are (f(2^h x) - f(2^-h x)) / 2h.
HALF_STEP = 0.125
#: Status of a target in :func:`saturation`.
SATURATED, NOT_SATURATED, CANNOT_TELL, NEVER_ABOVE = (
    "saturates within the range", "not saturated within the range", "cannot tell",
    "below the threshold throughout the range")
#: New-family sites set to 0 on the population's path (its centre: a typical family).
_NEW_FAMILY_SITES = ("z_coarse_new", "z_sub_new", "z_slope_new", "z_family_bench_new")
_POPULATION = "population"


@dataclass
class SizePath:
    """Draws of the model along a size path (:func:`size_path`). ``S`` draws, ``G`` sizes.

    Attributes
    ----------
    sizes, tokens : (G,) parameters (billions) and tokens (trillions) of the path's rows.
    skills, scores : trajectories (S, G, K) in logits and (S, G, J) expected scores.
    skill_gain_params, skill_gain_tokens : (S, G, K) gain per doubling of parameters (tokens
        held) and of tokens (parameters held); ``score_gain_*`` (S, G, J) the same of scores.
    skill_names, benchmarks : the targets. ``family``: the sub-family, or ``"population"``.
    description : the path in words (family, tokens, instruct).
    """

    sizes: np.ndarray
    tokens: np.ndarray
    skills: np.ndarray
    scores: np.ndarray
    skill_gain_params: np.ndarray
    skill_gain_tokens: np.ndarray
    score_gain_params: np.ndarray
    score_gain_tokens: np.ndarray
    skill_names: list[str]
    benchmarks: list[str]
    family: str
    description: str

    def targets(self, kind: str) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
        """``(names, trajectory, gain per doubling of parameters, of tokens)`` of ``kind``
        (``"skill"`` or ``"benchmark"``)."""
        if kind == "skill":
            return self.skill_names, self.skills, self.skill_gain_params, self.skill_gain_tokens
        if kind == "benchmark":
            return self.benchmarks, self.scores, self.score_gain_params, self.score_gain_tokens
        raise ValueError(f"kind must be 'skill' or 'benchmark', got {kind!r}")


def _tree(fit):
    from .plots import _tree as tree_of

    return tree_of(fit)


def _thin(tree, max_draws: int | None):
    """The fit's DataTree with at most ``max_draws`` posterior draws (evenly spaced)."""
    post = tree.posterior
    n = post.sizes["chain"] * post.sizes["draw"]
    if max_draws is None or n <= max_draws:
        return tree
    step = int(np.ceil(n / max_draws))
    out = tree.copy()
    out["posterior"] = post.isel(draw=slice(None, None, step))
    return out


def size_path(
    fit,
    *,
    family: str | None = None,
    size_range: tuple[float, float] = (0.1, 1000.0),
    sizes: Sequence[float] | None = None,
    n_grid: int = 49,
    tokens: float | None = None,
    tokens_per_param: float | None = None,
    instruct: bool = False,
    max_draws: int | None = 1000,
    seed: int = 0,
) -> SizePath:
    """Run the model along a path of sizes: trajectories and gains per doubling, per draw.

    Parameters
    ----------
    fit : a fitted :class:`~sloth_bayes.SlothBayes` or its DataTree.
    family : a sub-family of the fit (``Family2``): its law (efficiency, slope deviations,
        benchmark profile); ``None``: the population's, a typical new family (its offsets at
        the population's centre).
    size_range : (smallest, largest) parameters in billions; ``n_grid`` sizes evenly spaced
        in log size. ``sizes``: these sizes instead.
    tokens : pre-training tokens (trillions) of every row; ``tokens_per_param``: tokens grow
        with size at this ratio instead (20 is Chinchilla's). Default: the family's median
        token count in the fit (the population's: every fitted LLM's).
    instruct : instruct/chat rows (default base models).
    max_draws : posterior draws used (evenly thinned; None: all).
    seed : seeds what the draws do not fix (nothing on these paths; kept for reproducibility).
    """
    from .predictive import config_of, encoding_of, fit_table, model_draws, query_data

    tree = _thin(_tree(fit), max_draws)
    enc, config = encoding_of(tree), config_of(tree)
    if sizes is None:
        lo, hi = (float(v) for v in size_range)
        if not 0 < lo < hi:
            raise ValueError(f"size_range must be (smallest, largest) with 0 < smallest < largest, got {size_range}")
        grid = np.geomspace(lo, hi, int(n_grid))
    else:
        grid = np.asarray(sizes, float).ravel()
        if grid.size == 0 or not np.all(grid > 0):
            raise ValueError("sizes must be positive numbers of parameters (billions)")
    if tokens is not None and tokens_per_param is not None:
        raise ValueError("give tokens or tokens_per_param, not both")

    train = fit_table(tree)
    if family is None:
        coarse, sub, name = f"{_POPULATION} (typical new family)", f"{_POPULATION} (typical new family)", _POPULATION
        fam_tokens = train[TOKENS]
    else:
        if family not in enc.subfamilies:
            raise ValueError(f"{family!r} is not a sub-family (Family2) of the fit; None gives the population's law")
        coarse, sub, name = enc.coarse[enc.sub_coarse[enc.subfamilies.index(family)]], family, family
        fam_tokens = train.loc[train[SUBFAMILY] == family, TOKENS]
    if tokens_per_param is not None:
        path_tokens = float(tokens_per_param) * grid / 1000.0
        what_tokens = f"{tokens_per_param:g} tokens per parameter"
    else:
        if tokens is None:
            known = pd.to_numeric(fam_tokens, errors="coerce").dropna()
            known = known if len(known) else pd.to_numeric(train[TOKENS], errors="coerce").dropna()
            tokens = float(known.median())
        path_tokens = np.full(grid.shape, float(tokens))
        what_tokens = f"{tokens:g}T tokens"
    if not np.all(path_tokens > 0):
        raise ValueError("tokens must be positive")

    # each size at its own tokens, then half a step either side in parameters and in tokens
    h = 2.0**HALF_STEP
    shifts = ((1.0, 1.0), (h, 1.0), (1 / h, 1.0), (1.0, h), (1.0, 1 / h))
    rows = pd.DataFrame([
        {MODEL: f"{name}@{i}.{j}", FAMILY: coarse, SUBFAMILY: sub, INSTRUCT: bool(instruct),
         SIZE: s * ds, TOKENS: t * dt}
        for j, (ds, dt) in enumerate(shifts) for i, (s, t) in enumerate(zip(grid, path_tokens))
    ])
    data, extra, _ = query_data(tree, rows)
    if family is None:  # the population's centre: every new-family offset at 0
        n_s = tree.posterior.sizes["chain"] * tree.posterior.sizes["draw"]
        shapes = _new_site_shapes(data, config)
        extra = extra | {k: np.zeros((n_s, *shape), np.float32) for k, shape in shapes.items()
                         if k in _NEW_FAMILY_SITES}
    out = model_draws(tree, data, seed=seed, extra=extra)
    n_g, n_j = len(grid), len(enc.benchmarks)
    skills = out["skills"].reshape(-1, len(shifts), n_g, out["skills"].shape[-1])
    scores = out["mu"].reshape(-1, len(shifts), n_g, n_j)
    step = 2 * HALF_STEP
    return SizePath(
        sizes=grid, tokens=path_tokens,
        skills=skills[:, 0], scores=scores[:, 0],
        skill_gain_params=(skills[:, 1] - skills[:, 2]) / step,
        skill_gain_tokens=(skills[:, 3] - skills[:, 4]) / step,
        score_gain_params=(scores[:, 1] - scores[:, 2]) / step,
        score_gain_tokens=(scores[:, 3] - scores[:, 4]) / step,
        skill_names=[str(s) for s in tree.posterior["skill"].values],
        benchmarks=list(enc.benchmarks),
        family=name,
        description=f"{name}, {what_tokens}, {'instruct' if instruct else 'base'}",
    )


def _new_site_shapes(data, config) -> dict[str, tuple[int, ...]]:
    """Shapes (without the sample axis) of the new-group sites the model draws for ``data``."""
    import jax
    from numpyro import handlers

    from .model import skills_model

    def trace():
        with handlers.block(), handlers.seed(rng_seed=0):
            tr = handlers.trace(skills_model).get_trace(data, config)
        return {k: s["value"] for k, s in tr.items() if k.endswith("_new") and s["type"] == "sample"}

    return {k: tuple(v.shape) for k, v in jax.eval_shape(trace).items()}


def _as_path(fit_or_path, path_kw: dict) -> SizePath:
    if isinstance(fit_or_path, SizePath):
        if path_kw:
            raise TypeError(f"{sorted(path_kw)} define a path: give them to size_path, not with a SizePath")
        return fit_or_path
    return size_path(fit_or_path, **path_kw)


def _quantiles(x: np.ndarray, prob: float, axis: int = 0):
    """Median and central ``prob`` interval; values may be infinite (drawn, not interpolated)."""
    q = [(1 - prob) / 2, 0.5, (1 + prob) / 2]
    lo, med, hi = np.quantile(x, q, axis=axis, method="inverted_cdf")
    return lo, med, hi


def gains(fit_or_path, at: Sequence[float] | None = None, *, prob: float = 0.9, **path_kw) -> pd.DataFrame:
    """Posterior of the gain per doubling of parameters and of tokens, per skill and benchmark.

    Parameters
    ----------
    fit_or_path : a fit (then ``path_kw`` go to :func:`size_path`) or a :class:`SizePath`.
    at : sizes (billions) to report (default: every size of the path); with a fit, the
        path is evaluated at exactly these sizes.
    prob : mass of the central credible interval.

    Returns
    -------
    DataFrame, one row per target, size and doubled quantity: ``kind`` (``skill``: logits;
    ``benchmark``: score, 0.01 = 1 point), ``name``, ``size``, ``tokens``, ``doubling``
    (``parameters`` or ``tokens``), ``median``, ``lower``, ``upper``, ``p_positive``.
    """
    if at is not None and not isinstance(fit_or_path, SizePath):
        path_kw = {**path_kw, "sizes": at}
    path = _as_path(fit_or_path, path_kw)
    idx = np.arange(len(path.sizes))
    if at is not None and isinstance(fit_or_path, SizePath):
        idx = np.array([int(np.argmin(np.abs(np.log(path.sizes) - np.log(s)))) for s in at])
    rows = []
    for kind in ("skill", "benchmark"):
        names, _, g_params, g_tokens = path.targets(kind)
        for doubling, g in (("parameters", g_params), ("tokens", g_tokens)):
            lo, med, hi = np.quantile(g[:, idx], [(1 - prob) / 2, 0.5, (1 + prob) / 2], axis=0)
            pos = (g[:, idx] > 0).mean(0)
            for a, i in enumerate(idx):
                for t, name in enumerate(names):
                    rows.append({"kind": kind, "name": name, "size": path.sizes[i], "tokens": path.tokens[i],
                                 "doubling": doubling, "median": med[a, t], "lower": lo[a, t],
                                 "upper": hi[a, t], "p_positive": pos[a, t]})
    return pd.DataFrame(rows)


def saturation_sizes(gain: np.ndarray, sizes: np.ndarray, threshold: float) -> np.ndarray:
    """Per draw and target, the size from which ``gain`` (S, G, T) stays below ``threshold`` up
    to the end of the path (interpolated in log size between the path's sizes): ``inf`` where
    the gain at the largest size is still at or above it, the smallest size where it is below
    it all along. A gain that first rises (a benchmark leaving its floor) and then falls
    saturates where it falls for good."""
    above = gain >= threshold
    n_g = gain.shape[1]
    # last size at or above the threshold (-1: none)
    last = np.where(above.any(1), n_g - 1 - np.argmax(above[:, ::-1], axis=1), -1)
    log_s = np.log(sizes)
    out = np.full(last.shape, np.inf)
    out[last < 0] = sizes[0]
    inner = (last >= 0) & (last < n_g - 1)
    s_idx, t_idx = np.nonzero(inner)
    i = last[inner]
    g0, g1 = gain[s_idx, i, t_idx], gain[s_idx, i + 1, t_idx]
    frac = np.clip((g0 - threshold) / np.where(g0 > g1, g0 - g1, 1.0), 0.0, 1.0)
    out[inner] = np.exp(log_s[i] + frac * (log_s[i + 1] - log_s[i]))
    return out


def saturation(
    fit_or_path,
    threshold: float = 0.01,
    *,
    skill_threshold: float = 0.1,
    prob: float = 0.9,
    **path_kw,
) -> pd.DataFrame:
    """Where does each skill and benchmark stop gaining from more parameters?

    The saturation size of a target is the size from which its gain per doubling of
    parameters (tokens held as the path says) stays below the threshold up to the end of the
    range: per posterior draw (:func:`saturation_sizes`), then summarised.

    Parameters
    ----------
    fit_or_path : a fit (``path_kw`` go to :func:`size_path`: ``family``, ``size_range``,
        ``tokens`` ...) or a :class:`SizePath`.
    threshold : benchmarks: expected score per doubling (0.01 = 1 point).
    skill_threshold : skills: logits per doubling.
    prob : mass of the central credible interval of the saturation size.

    Returns
    -------
    DataFrame, one row per target: ``kind``, ``name``, ``threshold``, ``saturation_size``
    (posterior median, billions; ``inf``: beyond the range), ``lower``, ``upper`` (the
    central ``prob`` interval, ``inf`` where it runs past the range), ``p_saturated`` (the
    share of draws that saturate within the range), ``status`` (:data:`SATURATED` when the
    whole interval is inside the range, :data:`NOT_SATURATED` when not even its lower end
    is, :data:`NEVER_ABOVE` when the gain is below the threshold from the smallest size on
    (a benchmark at its floor all along), :data:`CANNOT_TELL` otherwise), the gain per
    doubling of parameters at the first and the last size (posterior medians),
    ``size_low``, ``size_high`` and ``path``.
    """
    path = _as_path(fit_or_path, path_kw)
    rows = []
    for kind, thr in (("skill", skill_threshold), ("benchmark", threshold)):
        names, _, g_params, _ = path.targets(kind)
        sat = saturation_sizes(g_params, path.sizes, thr)
        lo, med, hi = _quantiles(sat, prob)
        start, end = np.median(g_params[:, 0], 0), np.median(g_params[:, -1], 0)
        for t, name in enumerate(names):
            status = (NEVER_ABOVE if hi[t] <= path.sizes[0] else SATURATED if np.isfinite(hi[t])
                      else NOT_SATURATED if not np.isfinite(lo[t]) else CANNOT_TELL)
            rows.append({"kind": kind, "name": name, "threshold": thr, "saturation_size": med[t],
                         "lower": lo[t], "upper": hi[t], "p_saturated": float(np.isfinite(sat[:, t]).mean()),
                         "status": status, "gain_at_start": start[t], "gain_at_end": end[t],
                         "size_low": path.sizes[0], "size_high": path.sizes[-1], "path": path.description})
    return pd.DataFrame(rows)


def plot_saturation(
    fit_or_path,
    *,
    what: str | Sequence[str] = "skills",
    threshold: float = 0.01,
    skill_threshold: float = 0.1,
    prob: float = 0.9,
    ax=None,
    **path_kw,
):
    """Trajectories along a size path with their central ``prob`` bands, and the saturation
    sizes marked (median: a dotted line; interval: a bar at the top of the panel; nothing
    where the target does not saturate within the range).

    Parameters
    ----------
    what : ``"skills"`` (logits), ``"benchmarks"`` (expected scores) or a list of skill
        and benchmark names (one panel: do not mix the two scales).
    threshold, skill_threshold, prob : as in :func:`saturation`.
    ax : matplotlib Axes (default: a new figure).

    Returns
    -------
    matplotlib Axes.
    """
    import matplotlib.pyplot as plt
    from matplotlib.transforms import blended_transform_factory

    path = _as_path(fit_or_path, path_kw)
    if isinstance(what, str):
        if what not in ("skills", "benchmarks"):
            raise ValueError(f"what must be 'skills', 'benchmarks' or a list of names, got {what!r}")
        picks = [("skill" if what == "skills" else "benchmark", n)
                 for n in (path.skill_names if what == "skills" else path.benchmarks)]
    else:
        picks = []
        for n in what:
            if n in path.skill_names:
                picks.append(("skill", n))
            elif n in path.benchmarks:
                picks.append(("benchmark", n))
            else:
                raise ValueError(f"{n!r} is neither a skill nor a benchmark of the fit")
    table = saturation(path, threshold, skill_threshold=skill_threshold, prob=prob).set_index(["kind", "name"])
    if ax is None:
        _, ax = plt.subplots(figsize=(7.0, 4.4), layout="constrained")
    top = blended_transform_factory(ax.transData, ax.transAxes)
    for i, (kind, name) in enumerate(picks):
        names, traj, _, _ = path.targets(kind)
        y = traj[:, :, names.index(name)]
        lo, med, hi = np.quantile(y, [(1 - prob) / 2, 0.5, (1 + prob) / 2], axis=0)
        colour = f"C{i % 10}"
        ax.fill_between(path.sizes, lo, hi, color=colour, alpha=0.18, linewidth=0)
        ax.plot(path.sizes, med, color=colour, lw=2, label=name)
        row = table.loc[(kind, name)]
        if np.isfinite(row["saturation_size"]):
            ax.axvline(row["saturation_size"], color=colour, ls=":", lw=1.5)
            right = row["upper"] if np.isfinite(row["upper"]) else path.sizes[-1]
            ax.plot([row["lower"], right], [0.97 - 0.035 * i] * 2, color=colour, lw=4,
                    solid_capstyle="butt", transform=top)
    ax.set_xscale("log")
    ax.set_xlim(path.sizes[0], path.sizes[-1])
    ax.set_xlabel("parameters (B, log scale)")
    kinds = {k for k, _ in picks}
    ax.set_ylabel("skill (logits)" if kinds == {"skill"} else "expected score" if kinds == {"benchmark"} else "")
    ax.set_title(f"{path.description}: median, {prob:.0%} band, saturation sizes", fontsize="medium")
    ax.legend(fontsize="small", loc="lower right")
    return ax
