"""Posterior predictive forecasts for query LLMs, from a fitted DataTree.

The draws come from the model function itself (:func:`~sloth_bayes.predictive.model_draws`):
a query of a sub-family the fit saw uses its posterior efficiency, deviations and profile; a
new sub-family or family draws what the fit never saw from the population, once per
family (wide, honest intervals); see :mod:`sloth_bayes.predictive`.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import xarray as xr

from .data import FAMILY, INSTRUCT, MODEL, SIZE, SUBFAMILY, TOKENS, validate_queries
from .predictive import (
    KIND_NEW_FAMILY,
    KIND_NEW_SUB,
    KIND_OBSERVED,
    config_of,
    encoding_of,
    flat_draws,
    model_draws,
    query_data,
    variance_shares,
)

__all__ = [
    "FORECAST_COLUMNS",
    "KIND_NEW_FAMILY",
    "KIND_NEW_SUB",
    "KIND_OBSERVED",
    "config_of",
    "encoding_of",
    "flat_draws",
    "predictive_draws",
    "summarise",
]

FORECAST_COLUMNS = (
    "model",
    "benchmark",
    "mean",
    "median",
    "lower_50",
    "upper_50",
    "lower_90",
    "upper_90",
    "mean_noiseless",
    "point",
    "p_overestimate",
)
def predictive_draws(idata, queries: pd.DataFrame, seed: int = 0, sources: bool = False) -> xr.Dataset:
    """Draws of the score (``y``), of its noiseless mean (``mu``) and of the noise sd around
    it (``sd``) for each query and benchmark, and each query's ``kind``, as an xarray
    Dataset with dims (sample, model, benchmark). With ``sources``, ``share_<source>``
    (model, benchmark): the share of the predictive variance from each source of
    uncertainty (:func:`~sloth_bayes.predictive.variance_shares`). ``seed`` fixes the draws of
    what the fit never saw and of the noise."""
    q = validate_queries(queries)
    enc = encoding_of(idata)
    data, extra, kinds = query_data(idata, q)
    shape = (len(q), len(enc.benchmarks))
    draws = model_draws(idata, data, seed=seed, extra=extra, sources=sources)
    y, mu, sd = (draws[v].reshape((-1,) + shape) for v in ("y", "mu", "sd"))
    coords = {"model": q[MODEL].astype(str).to_numpy(), "benchmark": enc.benchmarks}
    new = [m for m, kd in zip(coords["model"], kinds) if kd == KIND_NEW_FAMILY]
    if new:
        warnings.warn(
            f"{len(new)} queries belong to families the fit has never seen "
            f"({', '.join(new[:5])}{', ...' if len(new) > 5 else ''}): forecast as new families, "
            "from the population of families (wide intervals).",
            stacklevel=2,
        )
    dims = ("sample", "model", "benchmark")
    out = xr.Dataset(
        {"y": (dims, y), "mu": (dims, mu), "sd": (dims, sd),
         "kind": (("model",), np.asarray(kinds))},
        coords=coords,
    )
    if sources:
        for name, share in variance_shares(draws).items():
            out[f"share_{name.replace(' ', '_')}"] = (dims[1:], share.reshape(shape))
    return out


def summarise(draws: xr.Dataset, queries: pd.DataFrame | None = None, *, reference=None) -> pd.DataFrame:
    """The forecast table (one row per query model x benchmark) from predictive draws.

    Columns :data:`FORECAST_COLUMNS`: predictive ``mean``, ``median``, central 50% / 90%
    intervals of the score, ``mean_noiseless`` (the trend without observation noise),
    ``point`` (the reference point forecast: the draws' ``point``, the classic skills law
    fitted beside the posterior; NaN when the draws have none) and ``p_overestimate`` =
    P(truth < point), the probability that the classic forecast is too high. Then
    ``family_kind``, ``point_basis`` (which intercept ``point`` used: sub-family, coarse
    family or population) and, with ``reference`` (a number, a column of ``queries``,
    ``{benchmark: value or column}``: :func:`~sloth_bayes.overestimate.resolve_reference`),
    ``reference`` and ``p_below_reference`` = P(truth < reference). With ``queries``, their
    descriptive columns (``family``, ``family2``, ``instruct``, ``params_b``, ``tokens_t``).
    """
    from .overestimate import prob_below, resolve_reference

    y, mu = draws["y"].to_numpy(), draws["mu"].to_numpy()
    qs = np.quantile(y, [0.05, 0.25, 0.5, 0.75, 0.95], axis=0)  # (5, Q, J)
    point = draws["point"].to_numpy() if "point" in draws else np.full(y.shape[1:], np.nan)
    models = draws["model"].to_numpy()
    benches = draws["benchmark"].to_numpy()
    qi, ji = np.meshgrid(np.arange(len(models)), np.arange(len(benches)), indexing="ij")
    qi, ji = qi.ravel(), ji.ravel()
    out = pd.DataFrame(
        {
            "model": models[qi],
            "benchmark": benches[ji],
            "mean": y.mean(0)[qi, ji],
            "median": qs[2][qi, ji],
            "lower_50": qs[1][qi, ji],
            "upper_50": qs[3][qi, ji],
            "lower_90": qs[0][qi, ji],
            "upper_90": qs[4][qi, ji],
            "mean_noiseless": mu.mean(0)[qi, ji],
            "point": point[qi, ji],
            "p_overestimate": prob_below(y, point)[qi, ji],
            "family_kind": draws["kind"].to_numpy()[qi],
        }
    )
    if "point_basis" in draws:
        out["point_basis"] = draws["point_basis"].to_numpy()[qi]
    shares = [v for v in draws.data_vars if str(v).startswith("share_")]
    if shares:
        values = np.stack([draws[v].to_numpy()[qi, ji] for v in shares], axis=1)
        names = np.array([str(v)[len("share_"):].replace("_", " ") for v in shares], dtype=object)
        main = names[values.argmax(axis=1)]
        main[(main == "efficiency") & (out["family_kind"].to_numpy() == KIND_NEW_FAMILY)] = "population"
        out["main_source"] = main
        for j, v in enumerate(shares):
            out[str(v)] = values[:, j]
    if reference is not None:
        ref = resolve_reference(reference, queries, [str(m) for m in models], [str(b) for b in benches])
        out["reference"] = ref[qi, ji]
        out["p_below_reference"] = prob_below(y, ref)[qi, ji]
    if queries is not None:
        meta = validate_queries(queries).rename(
            columns={
                MODEL: "model",
                FAMILY: "family",
                SUBFAMILY: "family2",
                INSTRUCT: "instruct",
                SIZE: "params_b",
                TOKENS: "tokens_t",
            }
        )
        meta["model"] = meta["model"].astype(str)
        out = out.merge(meta, on="model", how="left", validate="many_to_one")
    return out
