"""Posterior predictive forecasts for query LLMs, from a fitted DataTree.

A query's skills are built from the posterior draws exactly as the model builds them, with
what the fit never saw drawn from its population distribution, draw by draw:

* a sub-family in the fit uses its posterior efficiency; a new sub-family of a known coarse
  family draws ``alpha_coarse + sigma_sub * z``; a family never seen draws its coarse
  efficiency too (``sigma_coarse * z``): wide, honest intervals (``z`` from the model's
  prior: Student-t with ``efficiency_df`` degrees of freedom, or N(0, 1));
* a coarse family in the fit uses its posterior slope deviations, a new one draws them
  (pivoting on the mean covariates of its queried models);
* an LLM in the fit keeps its own skill residual, a new one draws ``sigma_llm * N(0, 1)``;
* an unknown token count is drawn from its family's prior (or its posterior, for an LLM of
  the fit).
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import xarray as xr

from .data import FAMILY, INSTRUCT, MODEL, SIZE, SUBFAMILY, TOKENS, validate_queries
from .model import (
    Encoding,
    ModelConfig,
    benchmark_mean,
    deviation_frame,
    deviation_knee,
    deviation_term,
    effective_floor,
    identify_profile,
    loading_mask,
    logit_noise_sd,
    observation_sd,
    orthogonal_to,
    profile_anchor_rows,
    size_bend,
    slope_deviation,
    standardise,
    tokens_prior,
)

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
#: How much the fit knows of a query's family.
KIND_OBSERVED, KIND_NEW_SUB, KIND_NEW_FAMILY = "observed family", "new sub-family", "new family"


def encoding_of(idata) -> Encoding:
    return Encoding(**json.loads(idata.attrs["sloth_bayes_encoding"]))


def flat_draws(idata, name: str) -> np.ndarray:
    """Posterior draws of ``name`` with chain and draw merged into a leading sample axis. A
    family profile's entries (dim ``profiled_benchmark``: no anchors) come on every
    benchmark, 0 where it has none, as fits saved before stop 38 stored them."""
    da = idata.posterior[name]
    if "profiled_benchmark" in da.dims:
        da = da.rename(profiled_benchmark="benchmark").reindex(
            benchmark=idata.posterior["benchmark"].values, fill_value=0.0)
    return da.stack(sample=("chain", "draw")).transpose("sample", ...).to_numpy()


def _centred(z: np.ndarray) -> np.ndarray:
    return z - z.mean(axis=1, keepdims=True)


def predictive_draws(idata, queries: pd.DataFrame, seed: int = 0) -> xr.Dataset:
    """Draws of the score (``y``), of the skill-implied mean (``mu``) and of the noise sd
    around it (``sd``) for each query and benchmark, plus the plug-in point forecast
    (``plugin``), as an xarray Dataset with dims
    (sample, model, benchmark). ``seed`` fixes the draws of what the fit never saw."""
    q = validate_queries(queries)
    enc = encoding_of(idata)
    rng = np.random.default_rng(seed)
    post = {v: flat_draws(idata, v) for v in idata.posterior.data_vars}
    n_s = post["slopes"].shape[0]
    k = post["slopes"].shape[-1]
    n_q = len(q)

    size_z, tokens_z = standardise(enc, q[SIZE], q[TOKENS])
    llm_index = {m: i for i, m in enumerate(enc.llms)}
    missing_llms = list(idata.posterior["tokens_latent"].coords["llm_missing_tokens"].values) if (
        "tokens_latent" in post
    ) else []
    t_draws = np.repeat(tokens_z[None, :], n_s, axis=0)
    t_plug = tokens_z.copy()
    prior_loc, prior_scale = tokens_prior(enc, q[FAMILY])
    for i, (name, t) in enumerate(zip(q[MODEL].astype(str), tokens_z)):
        if np.isfinite(t):
            continue
        if name in missing_llms:
            t_draws[:, i] = post["tokens_latent"][:, missing_llms.index(name)]
        else:
            t_draws[:, i] = prior_loc[i] + prior_scale[i] * rng.standard_normal(n_s)
        t_plug[i] = t_draws[:, i].mean()
    s_draws = np.repeat(size_z[None, :], n_s, axis=0)
    x = np.stack([s_draws, t_draws, s_draws * t_draws], axis=-1)  # (S, Q, 3)
    x_plug = np.stack([size_z, t_plug, size_z * t_plug], axis=-1)  # (Q, 3)

    instruct = q[INSTRUCT].to_numpy(float)
    theta = np.einsum("sqc,sck->sqk", x, post["slopes"]) + instruct[None, :, None] * post[
        "instruct_shift"
    ][:, None, :]
    theta_plug = x_plug @ post["slopes"].mean(0) + instruct[:, None] * post["instruct_shift"].mean(0)
    if "size_curvature" in post:
        bend = size_bend(enc, size_z)
        theta += bend[None, :, None] * post["size_curvature"][:, None, :]
        theta_plug += bend[:, None] * post["size_curvature"].mean(0)
    kinds = []
    has_dev = "z_slope" in post
    # A family the fit never saw has no centre of its own yet: its slope deviations pivot on
    # the mean covariates of its queried models (per draw), as a seen family's pivot on its
    # fitted ones. Pivoting on the population's centre would add a deviation spread for
    # being far from other families' models, which the family efficiency's spread (an offset
    # at each family's own centre) already covers: intervals ~1.3x too wide at zero-shot.
    coarse_q = q[FAMILY].astype(str).to_numpy()
    new_pivot = {c: x[:, coarse_q == c].mean(axis=1) for c in set(coarse_q) - set(enc.coarse)}
    has_llm = "z_llm" in post
    if has_llm:
        eps_fit = post["sigma_llm"][:, None, :] * _centred(post["z_llm"])  # (S, N, K)
    once = _draws_per_group(rng, n_s)
    config = config_of(idata)
    if has_dev:
        dev_fit = slope_deviation(post["tau_slope"], post["z_slope"])  # (S, C, D, K)
        knee = deviation_knee(config)

    def new_offset(level, group, chol):  # a new family's standardised offset draws (S, K)
        z = once((level, group), (k,), config.efficiency_df)
        return z if chol not in post else np.einsum("sk,sjk->sj", z, post[chol])  # z L^T

    rows = zip(q[MODEL].astype(str), q[FAMILY].astype(str), q[SUBFAMILY].astype(str))
    for i, (name, coarse, sub) in enumerate(rows):
        if sub in enc.subfamilies:
            a = post["alpha"][:, enc.subfamilies.index(sub)]
            a_plug = a.mean(0)
            kinds.append(KIND_OBSERVED)
        elif coarse in enc.coarse:
            base = post["alpha_coarse"][:, enc.coarse.index(coarse)]
            a = base + post["sigma_sub"] * new_offset("sub", sub, "sub_chol")
            a_plug = base.mean(0)
            kinds.append(KIND_NEW_SUB)
        else:
            a = post["sigma_coarse"] * new_offset("coarse", coarse, "efficiency_chol")
            a = a + post["sigma_sub"] * new_offset("sub", sub, "sub_chol")
            a_plug = np.zeros(k)
            kinds.append(KIND_NEW_FAMILY)
        theta[:, i] += a
        theta_plug[i] += a_plug
        if has_dev:
            if coarse in enc.coarse:
                # the family's own covariate centre, and its fitted range around it
                pivot, low, high = (a[0] for a in deviation_frame(enc, [coarse]))
                dev = dev_fit[:, enc.coarse.index(coarse)]
                theta_plug[i] += deviation_term(x_plug[i] - pivot, dev.mean(0), knee, low, high)
            else:
                pivot = new_pivot[coarse]  # (S, 3): its queried models' centre
                low = high = 0.0  # no fitted model: tempered from the pivot on
                z_new = once(("deviation", coarse), (1,) + dev_fit.shape[-2:], config.deviation_df)
                dev = slope_deviation(post["tau_slope"], z_new)[:, 0]
            theta[:, i] += deviation_term(x[:, i] - pivot, dev, knee, low, high)
        if has_llm:
            if name in llm_index:
                e = eps_fit[:, llm_index[name]]
                theta_plug[i] += e.mean(0)
            else:
                e = post["sigma_llm"] * rng.standard_normal((n_s, k))
            theta[:, i] += e

    offset, offset_plug = _bench_offsets(post, enc, q, rng, once, anchor_rows_of(idata, enc))
    lam, diff = post["loadings"], post["difficulty"]  # (S, J, K), (S, J)
    floor = effective_floor(post, enc.floor)  # (S, 1, J) when learned, else (J,)
    inv_items = np.array([1.0 / n if np.isfinite(n) and n > 0 else 0.0 for n in enc.n_items])
    power = post["link_power"][:, None, None] if "link_power" in post else 1.0
    mu = np.asarray(benchmark_mean(theta, lam, diff, floor, offset, power))
    sigma_logit = 0.0
    if "sigma_logit" in post:
        ratio = post["instruct_noise"][:, None, :] if "instruct_noise" in post else None
        sigma_logit = np.asarray(logit_noise_sd(post["sigma_logit"][:, None, :], instruct[None, :, None], ratio))
    sd = np.asarray(observation_sd(mu, inv_items, post["sigma_bench"][:, None, :], floor, sigma_logit, power))
    y = np.clip(mu + sd * rng.standard_normal(mu.shape), 0.0, 1.0)
    floor_plug = floor.mean(0)[0] if floor.ndim == 3 else floor
    power_plug = float(np.mean(power))
    plugin = np.asarray(benchmark_mean(theta_plug, lam.mean(0), diff.mean(0), floor_plug, offset_plug, power_plug))

    coords = {"model": q[MODEL].astype(str).to_numpy(), "benchmark": enc.benchmarks}
    new = [m for m, kd in zip(coords["model"], kinds) if kd == KIND_NEW_FAMILY]
    if new:
        warnings.warn(
            f"{len(new)} queries belong to families the fit has never seen "
            f"({', '.join(new[:5])}{', ...' if len(new) > 5 else ''}): forecast as new families, "
            "from the population of families (wide intervals).",
            stacklevel=2,
        )
    return xr.Dataset(
        {
            "y": (("sample", "model", "benchmark"), y),
            "mu": (("sample", "model", "benchmark"), mu),
            "sd": (("sample", "model", "benchmark"), sd),
            "plugin": (("model", "benchmark"), plugin),
            "kind": (("model",), np.asarray(kinds)),
        },
        coords=coords,
    )


def _draws_per_group(rng, n_s: int):
    """``once(key, shape, df=None)``: standard-normal draws (n_s, *shape) of what the fit
    never saw (Student-t with ``df`` degrees of freedom: the model's ``efficiency_df`` or
    ``deviation_df``), made once per unseen (sub-)family ``key``: its queries share them, so
    joint forecasts (e.g. a 70B against a 7B of one new family) are coherent."""
    drawn: dict = {}

    def once(key, shape, df=None):
        if key not in drawn:
            size = (n_s,) + tuple(shape)
            drawn[key] = rng.standard_normal(size) if df is None else rng.standard_t(df, size)
        return drawn[key]

    return once


def config_of(idata) -> ModelConfig:
    """The model configuration stored with a fit."""
    return ModelConfig.from_dict(json.loads(idata.attrs["sloth_bayes_config"]))


def anchor_rows_of(idata, enc: Encoding) -> np.ndarray | None:
    """The fit's :func:`~sloth_bayes.model.profile_anchor_rows`, from its stored config."""
    mask = loading_mask(enc.benchmarks, enc.anchors, len(enc.anchors), enc.pure_anchors)
    return profile_anchor_rows(mask, config_of(idata))


def _bench_offsets(
    post: dict, enc: Encoding, q: pd.DataFrame, rng, once=None, anchor_rows=None
) -> tuple[np.ndarray, np.ndarray]:
    """Benchmark-specific logit terms of the queries, (S, Q, J) draws and (Q, J) plug-in:
    the instruct shift per benchmark and the family's own benchmark profile (a family the
    fit has seen keeps its posterior profile, an unseen one draws a new profile)."""
    n_s, n_j = post["difficulty"].shape
    once = once or _draws_per_group(rng, n_s)
    off, plug = np.zeros((n_s, len(q), n_j)), np.zeros((len(q), n_j))
    if "instruct_bench" in post:
        shift = np.asarray(orthogonal_to(post["instruct_bench"][:, None, :], post["loadings"]))
        off += q[INSTRUCT].to_numpy(float)[None, :, None] * shift
        plug += off.mean(0)
    for site, names, col in (("family_bench", enc.coarse, FAMILY), ("sub_bench", enc.subfamilies, SUBFAMILY)):
        if f"z_{site}" not in post:
            continue
        sigma = post[f"sigma_{site}"]  # (S, J)
        profiles = sigma[:, None, :] * _centred(post[f"z_{site}"])  # (S, G, J)
        groups = q[col].astype(str).tolist()
        seen = [names.index(g) if g in names else -1 for g in groups]
        # a seen family keeps its profile; an unseen one draws one, shared by its queries
        u = np.stack(
            [profiles[:, i] if i >= 0 else sigma * once((site, g), (n_j,)) for g, i in zip(groups, seen)],
            axis=1,
        )
        u = np.asarray(identify_profile(u, post["loadings"], anchor_rows))
        off += u
        # the plug-in (a point fit) knows the profiles of seen families, assumes none for new ones
        plug += np.where(np.array(seen)[:, None] >= 0, u.mean(0), 0.0)
    return off, plug


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
