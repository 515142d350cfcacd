"""Posterior predictive draws of the model function itself, on any rows.

Forecasts, posterior predictive checks and skill plots all run
:func:`~sloth_bayes.model.skills_model` on the posterior draws (:func:`model_draws`): there is
no second copy of the model's arithmetic. What a row's draws use:

* a sub-family of the fit: its posterior efficiency (``alpha``), slope deviations and
  benchmark profile; a new sub-family of a known coarse family: that family's efficiency
  plus a new sub-family offset drawn inside the model (``z_sub_new``); a family never seen:
  its efficiency, deviations and profile drawn from the population (``*_new`` sites), once
  per family, so its rows share them;
* an unknown token count: the fit's latent count of that LLM (or of a same-size model of
  the same family), else a draw from the family's prior (``tokens_shared_new``);
* a new family's slope deviations pivot on the mean covariates of its own rows.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from .data import FAMILY, INSTRUCT, MODEL, SIZE, SUBFAMILY, TOKENS
from .model import (
    Encoding,
    ModelConfig,
    ModelData,
    deviation_frame,
    loading_mask,
    skills_model,
    standardise,
    tokens_prior,
)

#: How much the fit knows of a row's family.
KIND_OBSERVED, KIND_NEW_SUB, KIND_NEW_FAMILY = "observed family", "new sub-family", "new family"
#: Posterior variables that are not substituted into the model (recomputed for the rows).
_NOT_SUBSTITUTED = ("tokens_latent", "tokens_shared", "skills", "y")
#: Draws evaluated at once (bounds the memory of large forecasts).
_BATCH = 500
#: Sources of a forecast's uncertainty: the posterior variables that carry each one (fixed
#: at their posterior mean to remove it) and the sites of groups the fit never saw (fixed at
#: their prior's centre). A new family's efficiency is reported as ``population``.
SOURCES = {
    "efficiency": (("alpha", "alpha_coarse", "family_profile"), ("z_coarse_new", "z_sub_new", "z_family_bench_new")),
    "deviation": (("z_slope", "tau_slope"), ("z_slope_new",)),
    "instruct": (("instruct_shift", "instruct_bench"), ()),
    "shared law": (("slopes", "loadings", "difficulty", "link_power", "floor_lift"), ()),
}


def encoding_of(idata) -> Encoding:
    """The encoding (families, benchmarks, covariate standardisation) stored with a fit."""
    return Encoding(**json.loads(idata.attrs["sloth_bayes_encoding"]))


def config_of(idata) -> ModelConfig:
    """The model configuration stored with a fit."""
    return ModelConfig.from_dict(json.loads(idata.attrs["sloth_bayes_config"]))


def _stacked(da) -> np.ndarray:
    return da.stack(sample=("chain", "draw")).transpose("sample", ...).to_numpy()


def flat_draws(idata, name: str) -> np.ndarray:
    """Posterior draws of ``name`` with chain and draw merged into a leading sample axis. A
    family profile's entries (dim ``profiled_benchmark``: no anchors) come on every
    benchmark, 0 at the anchors."""
    da = idata.posterior[name]
    if "profiled_benchmark" in da.dims:
        da = da.rename(profiled_benchmark="benchmark").reindex(
            benchmark=idata.posterior["benchmark"].values, fill_value=0.0)
    return _stacked(da)


def fit_table(idata) -> pd.DataFrame:
    """The training table of a fit (one row per LLM: names, families, instruct flag, size,
    tokens, scores), rebuilt from its constant and observed data."""
    enc, cd = encoding_of(idata), idata.constant_data
    size_z, tokens_z = (cd[v].to_numpy().astype(float) for v in ("llm_size_z", "llm_tokens_z"))
    table = pd.DataFrame(
        {
            MODEL: enc.llms,
            FAMILY: cd["llm_coarse_family"].to_numpy().astype(str),
            SUBFAMILY: cd["llm_family"].to_numpy().astype(str),
            INSTRUCT: cd["llm_instruct"].to_numpy().astype(bool),
            SIZE: np.exp(size_z * enc.size_scale + enc.size_loc),
            TOKENS: np.exp(tokens_z * enc.tokens_scale + enc.tokens_loc),
        }
    )
    scores = np.full((len(enc.llms), len(enc.benchmarks)), np.nan)
    rows = [enc.llms.index(m) for m in cd["cell_llm"].to_numpy().astype(str)]
    cols = [enc.benchmarks.index(b) for b in cd["cell_benchmark"].to_numpy().astype(str)]
    scores[rows, cols] = idata.observed_data["y"].to_numpy()
    return pd.concat([table, pd.DataFrame(scores, columns=enc.benchmarks)], axis=1)


def _index_new(names, known: list[str]) -> tuple[np.ndarray, list[str]]:
    """Index of each name among ``known`` followed by the unknown ones (in first-seen order)."""
    new = [n for n in dict.fromkeys(names) if n not in known]
    lookup = {n: i for i, n in enumerate(known + new)}
    return np.array([lookup[n] for n in names], dtype=int), new


def _latent_tokens_by_llm(idata) -> dict[str, np.ndarray]:
    """The fit's latent token count draws (S,) of each LLM whose count was unknown."""
    if "tokens_latent" not in idata.posterior:
        return {}
    draws = _stacked(idata.posterior["tokens_latent"])
    names = idata.posterior["tokens_latent"].coords["llm_missing_tokens"].values.astype(str)
    return {name: draws[:, i] for i, name in enumerate(names)}


def query_data(idata, queries: pd.DataFrame) -> tuple[ModelData, dict, list[str]]:
    """The model's arrays for ``queries`` (validated rows: model, families, instruct, size,
    tokens) against a fit: every benchmark of the fit a cell of every row.

    Returns the data, the values of ``tokens_shared`` to substitute (draws of the fit's latent
    counts behind the rows' unknown ones, (S, G)) and each row's kind (:data:`KIND_OBSERVED`,
    :data:`KIND_NEW_SUB`, :data:`KIND_NEW_FAMILY`).
    """
    enc, config = encoding_of(idata), config_of(idata)
    q = queries.reset_index(drop=True)
    n, n_bench = len(q), len(enc.benchmarks)
    coarse_names, sub_names = q[FAMILY].astype(str).tolist(), q[SUBFAMILY].astype(str).tolist()
    coarse, new_coarse = _index_new(coarse_names, enc.coarse)
    sub, new_subs = _index_new(sub_names, enc.subfamilies)
    first_coarse = {s: c for s, c in zip(sub_names, coarse)}
    kinds = [KIND_OBSERVED if s in enc.subfamilies else KIND_NEW_SUB if c in enc.coarse else KIND_NEW_FAMILY
             for s, c in zip(sub_names, coarse_names)]

    # unknown token counts: the fit's latent count of this LLM or of a same-size sibling in
    # its family, else a new latent count drawn from the family's prior
    size_z, tokens_z = standardise(enc, q[SIZE], q[TOKENS])
    missing = np.flatnonzero(~np.isfinite(tokens_z))
    fitted = _latent_tokens_by_llm(idata)
    train = fit_table(idata)
    sibling = {}
    for name in fitted:
        row = train.loc[train[MODEL] == name].iloc[0]
        sibling.setdefault((str(row[FAMILY]), float(row[SIZE])), name)
    keys, backed, new_keys = [], [], []
    for i in missing:
        name, key = str(q.loc[i, MODEL]), (coarse_names[i], float(q.loc[i, SIZE]))
        source = name if name in fitted else sibling.get(key)
        keys.append(("fit", source) if source is not None else ("new", key))
    groups = list(dict.fromkeys(keys))
    backed = [g for g in groups if g[0] == "fit"]
    new_keys = [g for g in groups if g[0] == "new"]
    order = backed + new_keys  # the model puts the fitted counts first
    group = np.array([order.index(k) for k in keys], dtype=int)
    shared = np.stack([fitted[src] for _, src in backed], axis=1) if backed else None
    loc_new, scale_new = tokens_prior(enc, [k[1][0] for k in new_keys])
    loc_fit = shared.mean(0) if shared is not None else np.zeros(0)
    t_fill = np.where(np.isfinite(tokens_z), tokens_z, 0.0)
    t_fill[missing] = np.concatenate([loc_fit, loc_new])[group]
    x_fill = np.stack([size_z, t_fill, size_z * t_fill], axis=-1)

    # slope deviations: a fitted family pivots as in the fit, a new one on its own rows
    pivot, low, high = deviation_frame(enc, enc.coarse)
    new_pivot = np.array([x_fill[coarse == len(enc.coarse) + j].mean(0) for j in range(len(new_coarse))]).reshape(-1, 3)
    pivots = np.concatenate([pivot, new_pivot])
    frame = (pivots, np.concatenate([pivot + low, new_pivot]), np.concatenate([pivot + high, new_pivot]))

    rows, cols = np.repeat(np.arange(n), n_bench), np.tile(np.arange(n_bench), n)
    data = ModelData(
        size_z=size_z,
        tokens_z=np.nan_to_num(tokens_z),
        tokens_missing=missing,
        tokens_group=group,
        tokens_prior_loc=loc_fit,
        tokens_prior_scale=np.ones_like(loc_fit),
        sub=sub,
        coarse=coarse,
        sub_coarse=np.array(enc.sub_coarse, dtype=int),
        instruct=q[INSTRUCT].to_numpy(float),
        x_fill=x_fill,
        floor=np.array(enc.floor),
        inv_items=np.array([1.0 / v if np.isfinite(v) and v > 0 else 0.0 for v in enc.n_items]),
        loading_mask=loading_mask(enc.benchmarks, enc.anchors, config.n_skills),
        obs_row=rows,
        obs_col=cols,
        y=np.zeros(len(rows)),
        boundary=np.zeros(0, dtype=int),
        n_coarse=len(enc.coarse),
        lifted=np.flatnonzero(np.asarray(enc.floor_learned, bool)),
        frame=tuple(np.asarray(a, np.float32) for a in frame),
        new_coarse=len(new_coarse),
        new_sub_coarse=np.array([first_coarse[s] for s in new_subs], dtype=int),
        new_tokens_loc=loc_new,
        new_tokens_scale=scale_new,
    )
    return data, ({} if shared is None else {"tokens_shared": shared}), kinds


def model_draws(idata, data: ModelData, seed=0, extra: dict | None = None,
                sources: bool = False) -> dict[str, np.ndarray]:
    """Run the model on ``data`` once per posterior draw: returns ``y`` (a replicated score
    per cell), ``mu`` and ``sd`` (the mean and noise sd of the model's own likelihood of that
    cell) and ``skills`` (per row), each with a leading sample axis. ``extra``: more values to
    substitute, (S, ...) each (e.g. :func:`query_data`'s token counts). ``seed`` fixes what
    the draws of the fit do not (new groups, observation noise).

    ``sources``: also ``mu`` with each of :data:`SOURCES` removed (``mu_without_<source>``),
    the same draws and keys otherwise, for :func:`variance_shares`."""
    import jax
    from numpyro import handlers

    from .inference import to_key

    config = config_of(idata)
    post = idata.posterior
    params = {v: _stacked(post[v]).astype(np.float32) for v in post.data_vars if v not in _NOT_SUBSTITUTED}
    params |= {k: np.asarray(v, np.float32) for k, v in (extra or {}).items()}
    n_s = next(iter(params.values())).shape[0]

    means = {k: np.mean(v, axis=0) for k, v in params.items()}

    def run(p, key, centred=()):
        def centre(msg):  # groups the fit never saw, at their prior's centre
            return msg["fn"].mean if msg["type"] == "sample" and msg["name"] in centred else None

        model = handlers.substitute(handlers.substitute(skills_model, data=p), substitute_fn=centre)
        return handlers.trace(handlers.seed(model, key)).get_trace(data, config)

    def one(args):
        p, key = args
        tr = run(p, key)
        site = tr["y"]
        out = {"y": site["value"], "mu": site["fn"].loc, "sd": site["fn"].scale, "skills": tr["skills"]["value"]}
        if sources:
            for name, (fitted, new) in SOURCES.items():
                fixed = {**p, **{k: means[k] for k in fitted if k in p}}
                out[f"mu_without_{name}"] = run(fixed, key, new)["y"]["fn"].loc
        return out

    keys = jax.random.split(to_key(seed), n_s)
    out = jax.jit(lambda p, k: jax.lax.map(one, (p, k), batch_size=_BATCH))(params, keys)
    return {k: np.asarray(v) for k, v in out.items()}


def variance_shares(draws: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Share of each cell's predictive variance from each source (:data:`SOURCES` and the
    observation ``noise``), from :func:`model_draws` run with ``sources=True``: a source's
    variance is how much the variance of the noiseless mean falls when it is removed (the
    same draws otherwise), the noise's the mean noise variance; shares sum to one (the
    sources' interactions are left out)."""
    parts = {name: np.maximum(draws["mu"].var(0) - draws[f"mu_without_{name}"].var(0), 0.0) for name in SOURCES}
    parts["noise"] = np.mean(draws["sd"] ** 2, axis=0)
    total = np.maximum(sum(parts.values()), 1e-30)
    return {name: v / total for name, v in parts.items()}
