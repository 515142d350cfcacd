"""The hierarchical skills scaling law as a plain NumPyro model function.

:func:`encode` turns a validated table into a :class:`ModelData` of arrays and
:func:`skills_model` is the NumPyro model. The arithmetic that maps parameters to scores
(:func:`skills`, :func:`benchmark_logit`, :func:`link`, :func:`observation_sd`) is written
once here: the model, the forecaster and the plots all call it. ``docs/model.md`` has the
model in maths and why each part is there.

In short, for LLM ``i`` of sub-family ``s`` in coarse family ``c`` and benchmark ``j``:

* skills ``theta_i = alpha_s + delta * instruct_i + x_i B + g(x_i - xbar_c) dB_c`` with
  ``x_i = (z_size, z_tokens, z_size * z_tokens)`` (standardised logs), ``B`` shared slopes,
  ``alpha_s = alpha_c + sigma_sub z_s``, ``alpha_c = sigma_coarse z_c`` (Student-t offsets),
  ``dB_c ~ N(0, tau^2)`` slope deviations pivoting on the family's models and growing like a
  square root of the distance beyond them (honest extrapolation intervals); optionally
  (``ModelConfig.saturation``) bent above the population's centre to a bounded growth
  (:func:`saturating_skills`);
* logit ``lambda_j . theta_i + b_j + d_j instruct_i + u_cj`` (``u``: the family's own
  benchmark profile; ``d``: instruct shift no skill explains);
* mean score ``mu = floor_j + (1 - floor_j) * sigmoid(logit) ** power``;
* observed score: a censored normal around ``mu`` with binomial item noise, additive and
  logit-scale over-dispersion; rounded scores read as intervals.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pandas as pd
from jax.scipy.special import log_ndtr
from numpyro.distributions import constraints

from .data import FAMILY, INSTRUCT, MODEL, SIZE, SUBFAMILY, TOKENS, rounding_step

COVARIATES = ("log_size", "log_tokens", "log_size_x_log_tokens")
#: The covariates whose slopes a family may deviate from (size and tokens).
DEVIATION_COVARIATES = COVARIATES[:2]
#: Prior sd (standardised log tokens) of an unknown count next to a same-size sibling's.
SIBLING_TOKENS_SCALE = 0.05
#: Benchmarks preferred as skill anchors, in order (well observed, distinct skills).
ANCHOR_PREFERENCE = ("MMLU", "GSM8K", "HellaSwag", "IFEval", "TruthfulQA", "BBH", "ARC")
#: How a benchmark's answers are scored (``answer`` in the benchmark metadata; "unknown" for
#: a user's own benchmark): what ``ModelConfig.learned_floors`` selects on.
ANSWER_KINDS = ("choice", "rules", "exact", "unknown")


@dataclass(frozen=True)
class Priors:
    """Prior scales of the model. Spreads (``coarse``, ``sub``, ``deviation``,
    ``family_bench``, ``logit_noise``) have a Gamma(2, 2 / scale) prior of mean ``scale``:
    no mass at 0, so a small spread does not pull NUTS into a funnel."""

    loading: float = 1.0  #: sd of a free (signed) loading
    slope: float = 1.0  #: sd of a shared slope (logits per sd of a covariate)
    difficulty: float = 2.0  #: sd of a benchmark's difficulty (logits)
    instruct: float = 1.0  #: sd of the instruct/chat shift of each skill
    instruct_bench: float = 0.5  #: sd of the instruct shift of each benchmark beyond the skills
    coarse: float = 2.0  #: spread of coarse-family efficiencies
    sub: float = 0.5  #: spread of sub-families around their coarse family
    efficiency_df: float | None = 4.0  #: Student-t dof of family offsets (None: normal)
    deviation: float = 0.2  #: spread of families' slope deviations
    deviation_knee: float | None = 0.125  #: beyond a family's range deviations grow like sqrt (None: linearly)
    family_bench: float = 0.5  #: spread of a family's benchmark profile
    bench_noise: float = 0.02  #: half-normal scale of additive score noise
    logit_noise: float = 0.5  #: spread of logit-scale over-dispersion
    floor_lift: float = 0.2  #: half-normal scale of a learned floor's lift above chance
    link_power: float = 1.0  #: sd of the log power of the link
    saturation_rate: float = 0.3  #: spread of the skills' saturation rates (``ModelConfig.saturation``)


@dataclass(frozen=True)
class ModelConfig:
    """The modelling choices, stored with every fit.

    Parameters
    ----------
    n_skills : number of latent skills K.
    anchors : benchmarks that anchor the skills (the k-th loads 1 on skill k and 0 on the
        others: fixes sign, scale and rotation); ``None`` picks from :data:`ANCHOR_PREFERENCE`.
    slope_deviations : families deviate a little from the shared slopes (wider intervals the
        further a forecast extrapolates from the family's models).
    family_profile : each coarse family has its own benchmark profile, carried from its
        observed models to its forecasts.
    learned_floors : answer kinds (:data:`ANSWER_KINDS`) whose lower asymptote is learned
        above the chance level (IFEval's rule checks have no chance level).
    saturation : skills may saturate: above the population's centre each skill's further
        growth is damped exponentially, at a per-skill rate whose prior has most of its mass
        near 0, the linear law (:func:`saturating_skills`).
    priors : prior scales (:class:`Priors`).
    """

    n_skills: int = 4
    anchors: tuple[str, ...] | None = None
    slope_deviations: bool = True
    family_profile: bool = True
    learned_floors: tuple[str, ...] = ("rules",)
    saturation: bool = False
    priors: Priors = field(default_factory=Priors)

    def __post_init__(self):
        if isinstance(self.learned_floors, (str, bool)) or not set(self.learned_floors) <= set(ANSWER_KINDS):
            raise ValueError(
                f"ModelConfig(learned_floors={self.learned_floors!r}): give a tuple of answer kinds "
                f"from {ANSWER_KINDS}, e.g. ('rules',), or () for the chance levels everywhere."
            )
        if isinstance(self.priors, dict):
            object.__setattr__(self, "priors", Priors(**self.priors))
        if self.anchors is not None:
            object.__setattr__(self, "anchors", tuple(self.anchors))
        object.__setattr__(self, "learned_floors", tuple(self.learned_floors))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        """The configuration stored with a fit; unknown options are refused."""
        d = dict(d)
        prior_names = {f.name for f in fields(Priors)}
        unknown = sorted(set(d) - {f.name for f in fields(cls)}) + sorted(
            set(d.get("priors") or {}) - prior_names)
        if unknown:
            raise ValueError(
                f"the stored model configuration has options this version of sloth_bayes does "
                f"not know: {unknown}. Load the fit with the version that wrote it, or refit."
            )
        return cls(**d)

    def with_options(self, **options) -> "ModelConfig":
        """A copy with some choices or prior scales changed (``sub=0.3`` sets ``priors.sub``)."""
        prior_names = {f.name for f in fields(Priors)}
        own = {k: v for k, v in options.items() if k not in prior_names}
        priors = replace(self.priors, **{k: v for k, v in options.items() if k in prior_names})
        return replace(self, priors=priors, **own)

    @classmethod
    def from_options(cls, options: list[str]) -> "ModelConfig":
        """A configuration from ``NAME=VALUE`` strings (the command line's ``--option``): a
        choice or a prior scale, each value read as its field's type (``true``/``false``,
        a comma list for ``anchors`` and ``learned_floors``, ``none`` where None is allowed)."""
        base = cls()
        defaults = {f.name: getattr(base, f.name) for f in fields(cls) if f.name != "priors"}
        defaults |= {f.name: getattr(base.priors, f.name) for f in fields(Priors)}
        values: dict = {}
        for item in options:
            name, sep, text = item.partition("=")
            name, text = name.strip().replace("-", "_"), text.strip()
            if not sep:
                raise ValueError(f"expected NAME=VALUE, got {item!r}")
            if name not in defaults:
                raise ValueError(f"{name!r} is not a model option; use one of {', '.join(defaults)}")
            default, none = defaults[name], text.lower() in ("", "none")
            try:
                if isinstance(default, bool):
                    if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
                        raise ValueError("use true or false")
                    values[name] = text.lower() in ("true", "1", "yes")
                elif name in ("anchors", "learned_floors"):
                    values[name] = None if none and name == "anchors" else tuple(
                        t.strip() for t in text.split(",") if t.strip().lower() not in ("", "none"))
                elif none and name in ("efficiency_df", "deviation_knee"):
                    values[name] = None
                else:
                    values[name] = type(default)(text) if default is not None else float(text)
            except ValueError as err:
                raise ValueError(f"{name}={text!r}: {err}") from None
        return base.with_options(**values)


@dataclass
class Encoding:
    """Everything needed to map a table onto model indices, and back (stored in fits)."""

    llms: list[str]
    subfamilies: list[str]
    coarse: list[str]
    sub_coarse: list[int]
    benchmarks: list[str]
    floor: list[float]
    n_items: list[float]
    anchors: list[str]
    size_loc: float
    size_scale: float
    tokens_loc: float
    tokens_scale: float
    # Prior of a missing log-token count, per coarse family (standardised units).
    coarse_tokens_loc: dict[str, float] = field(default_factory=dict)
    coarse_tokens_scale: dict[str, float] = field(default_factory=dict)
    # Mean standardised covariates of each coarse family's fitted LLMs: the point its slope
    # deviations pivot on (a family absent here pivots on the population mean, 0).
    coarse_x_centre: dict[str, list[float]] = field(default_factory=dict)
    # Lowest / highest standardised covariates of each coarse family's fitted LLMs: the range
    # inside which a slope deviation grows linearly (absent: the pivot).
    coarse_x_low: dict[str, list[float]] = field(default_factory=dict)
    coarse_x_high: dict[str, list[float]] = field(default_factory=dict)
    # Benchmarks whose floor the fit learns (``ModelConfig.learned_floors``).
    floor_learned: list[bool] = field(default_factory=list)
    # Step each benchmark's training scores were rounded to (:func:`data.rounding_step`; 0: exact).
    score_step: list[float] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


class ModelData(NamedTuple):
    """Arrays the model function reads. Shapes: N LLMs, S sub-families, J benchmarks, O cells."""

    size_z: np.ndarray  # (N,)
    tokens_z: np.ndarray  # (N,) 0 where missing
    tokens_missing: np.ndarray  # (M,) int rows whose token count is latent
    tokens_group: np.ndarray  # (M,) int: the shared latent count of each such row
    tokens_prior_loc: np.ndarray  # (L,) prior of each shared latent count
    tokens_prior_scale: np.ndarray  # (L,)
    sub: np.ndarray  # (N,) int
    coarse: np.ndarray  # (N,) int
    sub_coarse: np.ndarray  # (S,) int
    instruct: np.ndarray  # (N,) float
    x_fill: np.ndarray  # (N, 3) covariates, unknown tokens at their prior centre (family pivots)
    floor: np.ndarray  # (J,)
    inv_items: np.ndarray  # (J,) 1 / n_items (0 when unknown)
    loading_mask: np.ndarray  # (J, K) 1 where a loading is free
    obs_row: np.ndarray  # (O,) int
    obs_col: np.ndarray  # (O,) int
    y: np.ndarray  # (O,)
    boundary: np.ndarray  # (B,) int cells whose score is exactly 0 or 1
    n_coarse: int
    cell_mask: np.ndarray | None = None  # (O,) bool: cells in the likelihood (None = all)
    lifted: np.ndarray | None = None  # (L,) int benchmarks whose floor is learned
    # (pivot, low, high) of the slope deviations, each (C, 3) (deviation_pivots); None: from
    # the data above
    frame: tuple | None = None
    step: np.ndarray | None = None  # (J,) rounding step of each benchmark's scores (0: exact)
    # site -> centredness (G, K) in [0, 1] of the family offsets (pinned_offsets; keys of
    # CENTRED_SITES); None: non-centred
    centring: dict | None = None
    # Groups the fit never saw (forecast rows): drawn from the population. ``coarse`` and
    # ``sub`` index the fitted groups first, then these.
    new_coarse: int = 0  # coarse families
    new_sub_coarse: np.ndarray | None = None  # (S_new,) coarse family of each new sub-family
    new_tokens_loc: np.ndarray | None = None  # (G_new,) prior of new latent token counts
    new_tokens_scale: np.ndarray | None = None


def _pick_anchors(benchmarks: list[str], k: int, anchors: tuple[str, ...] | None) -> list[str]:
    pref = list(anchors) if anchors is not None else list(ANCHOR_PREFERENCE)
    chosen = [b for b in pref if b in benchmarks][:k]
    for b in benchmarks:  # fall back on table order
        if len(chosen) >= k:
            break
        if b not in chosen:
            chosen.append(b)
    if len(chosen) < k:
        raise ValueError(
            f"{k} skills need at least {k} benchmarks; the table has {len(benchmarks)}. Fit fewer "
            f"skills: `--skills {len(benchmarks)}` (ModelConfig(n_skills={len(benchmarks)}))."
        )
    return chosen


def loading_mask(benchmarks: list[str], anchors: list[str], k: int) -> np.ndarray:
    """Loading pattern: 1 = free, 0 = fixed at 0, 2 = fixed at 1.

    The a-th anchor benchmark loads exactly 1 on skill ``a`` (the skill's unit and sign: more
    skill, higher anchor score) and 0 on every other: skill ``a`` is its anchor's logit, so
    no rotation of the skills leaves the likelihood unchanged.
    """
    mask = np.ones((len(benchmarks), k))
    for a, name in enumerate(anchors):
        row = benchmarks.index(name)
        mask[row, :] = 0.0
        mask[row, a] = 2.0
    return mask


def make_encoding(table: pd.DataFrame, bench_meta: pd.DataFrame, config: ModelConfig) -> Encoding:
    """Index families and benchmarks, and fix the covariate standardisation of a training table."""
    benchmarks = list(bench_meta.index)
    subs = list(pd.unique(table[SUBFAMILY].astype(str)))
    sub_to_coarse = table.groupby(SUBFAMILY, sort=False)[FAMILY].agg(lambda s: s.iloc[0])
    coarse = list(pd.unique(table[FAMILY].astype(str)))
    log_s = np.log(table[SIZE].to_numpy(float))
    log_t = np.log(table[TOKENS].to_numpy(float))
    t_ok = np.isfinite(log_t)
    size_loc, size_scale = float(log_s.mean()), float(log_s.std() or 1.0)
    if t_ok.sum() >= 2:
        tokens_loc, tokens_scale = float(log_t[t_ok].mean()), float(log_t[t_ok].std() or 1.0)
    else:
        tokens_loc, tokens_scale = 0.0, 1.0
    tz = (log_t - tokens_loc) / tokens_scale
    c_loc, c_scale = {}, {}
    for c, grp in pd.Series(tz).groupby(table[FAMILY].astype(str).to_numpy()):
        vals = grp[np.isfinite(grp)]
        if len(vals):
            # a family's token counts vary within it: keep the prior wide (half the population sd)
            c_loc[c], c_scale[c] = float(vals.mean()), 0.5
    enc = Encoding(
        llms=list(table[MODEL].astype(str)),
        subfamilies=subs,
        coarse=coarse,
        sub_coarse=[coarse.index(str(sub_to_coarse[s])) for s in subs],
        benchmarks=benchmarks,
        floor=[float(v) for v in bench_meta["floor"]],
        n_items=[float(v) for v in bench_meta["n_items"]],
        floor_learned=[str(a) in config.learned_floors for a in bench_meta.get("answer", [""] * len(benchmarks))],
        score_step=[rounding_step(table[b]) if b in table else 0.0 for b in benchmarks],
        anchors=_pick_anchors(benchmarks, config.n_skills, config.anchors),
        size_loc=size_loc,
        size_scale=size_scale,
        tokens_loc=tokens_loc,
        tokens_scale=tokens_scale,
        coarse_tokens_loc=c_loc,
        coarse_tokens_scale=c_scale,
    )
    enc.coarse_x_centre = family_centres(table, enc)
    enc.coarse_x_low, enc.coarse_x_high = family_ranges(table, enc)
    return enc


def standardise(enc: Encoding, size, tokens) -> tuple[np.ndarray, np.ndarray]:
    """Standardised log size and log tokens (NaN where tokens are unknown)."""
    size_z = (np.log(np.asarray(size, float)) - enc.size_loc) / enc.size_scale
    tokens_z = (np.log(np.asarray(tokens, float)) - enc.tokens_loc) / enc.tokens_scale
    return size_z, tokens_z


def tokens_prior(enc: Encoding, families) -> tuple[np.ndarray, np.ndarray]:
    """Prior (loc, scale) of standardised log tokens for LLMs whose count is unknown."""
    loc = np.array([enc.coarse_tokens_loc.get(str(f), 0.0) for f in families])
    scale = np.array([enc.coarse_tokens_scale.get(str(f), 1.0) for f in families])
    return loc, scale


def latent_tokens(table: pd.DataFrame, enc: Encoding):
    """Standardised covariates of a table's LLMs with their unknown token counts: returns
    ``size_z``, ``tokens_z`` (NaN where unknown), the unknown rows and their prior loc/scale.

    A model whose count is unknown but whose sibling (same coarse family, same size, e.g.
    the base model of an instruct fine-tune) has one was pretrained on the same data: its
    prior is centred there, tightly. Otherwise the family's intercept and its unknown counts
    trade off along a ridge that NUTS crosses slowly.
    """
    size_z, tokens_z = standardise(enc, table[SIZE], table[TOKENS])
    missing = np.flatnonzero(~np.isfinite(tokens_z))
    loc, scale = tokens_prior(enc, table[FAMILY].iloc[missing])
    family, size = table[FAMILY].astype(str).to_numpy(), table[SIZE].to_numpy(float)
    for m, i in enumerate(missing):
        sib = (family == family[i]) & (size == size[i]) & np.isfinite(tokens_z)
        if sib.any():
            loc[m], scale[m] = float(np.mean(tokens_z[sib])), SIBLING_TOKENS_SCALE
    return size_z, tokens_z, missing, loc, scale


def token_groups(table: pd.DataFrame, missing) -> np.ndarray:
    """(M,) group index of each row whose count is unknown: rows of one coarse family and one
    size share a latent count (a base model and its instruct/chat versions were pretrained
    on the same data; two latents would only add a ridge along which NUTS crawls)."""
    family, size = table[FAMILY].astype(str).to_numpy(), table[SIZE].to_numpy(float)
    keys = list(zip(family[missing], size[missing]))
    first = {k: g for g, k in enumerate(dict.fromkeys(keys))}
    return np.array([first[k] for k in keys], dtype=int)


def token_group_labels(data: "ModelData", llms) -> list[str]:
    """Coordinates of the shared latent counts: their LLMs' names joined with ``+``."""
    missing, group = np.asarray(data.tokens_missing), np.asarray(data.tokens_group)
    return ["+".join(str(llms[i]) for i in missing[group == g]) for g in np.unique(group)]


def _scored_covariates(table: pd.DataFrame, enc: Encoding):
    """Covariates (unknown tokens at their prior centre) of the LLMs with at least one
    score, and their coarse families."""
    size_z, tokens_z, missing, loc, _ = latent_tokens(table, enc)
    tokens_z = tokens_z.copy()
    tokens_z[missing] = loc
    x = np.stack([size_z, tokens_z, size_z * tokens_z], axis=-1)
    scored = np.isfinite(table[enc.benchmarks].to_numpy(float)).any(axis=1)
    return x[scored], table[FAMILY].astype(str).to_numpy()[scored]


def family_centres(table: pd.DataFrame, enc: Encoding) -> dict[str, list[float]]:
    """Mean covariates of each coarse family's LLMs with at least one score: the numpy twin
    of the pivots :func:`skills_model` computes."""
    x, fam = _scored_covariates(table, enc)
    return {c: [float(v) for v in x[fam == c].mean(0)] for c in pd.unique(fam)}


def family_ranges(table: pd.DataFrame, enc: Encoding) -> tuple[dict, dict]:
    """Lowest and highest covariates of each coarse family's LLMs with at least one score:
    the numpy twin of the ranges :func:`skills_model` computes."""
    x, fam = _scored_covariates(table, enc)
    edges = [{c: [float(v) for v in f(x[fam == c], axis=0)] for c in pd.unique(fam)} for f in (np.min, np.max)]
    return edges[0], edges[1]


def deviation_frame(enc: Encoding, coarse_names) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(G, 3) pivots of the slope deviations of coarse families by name, and the lowest and
    highest covariates of their fitted LLMs relative to the pivots (the range inside which a
    tempered deviation is linear). A family the fit has not seen pivots on the population
    mean, 0; a family without a stored range (a fit saved before ranges were) has a point
    range at its pivot."""
    pivot = np.array([enc.coarse_x_centre.get(str(c), [0.0, 0.0, 0.0]) for c in coarse_names]).reshape(-1, 3)
    low, high = (
        np.array([stored.get(str(c), p) for c, p in zip(coarse_names, pivot)]).reshape(-1, 3) - pivot
        for stored in (enc.coarse_x_low, enc.coarse_x_high)
    )
    return pivot, low, high


def encode(table: pd.DataFrame, enc: Encoding, n_skills: int) -> ModelData:
    """Arrays for :func:`skills_model` from a validated training table."""
    size_z, tokens_z, missing, loc, scale = latent_tokens(table, enc)
    group = token_groups(table, missing)
    first = np.unique(group, return_index=True)[1]  # groups are numbered by first row
    t_fill = tokens_z.copy()
    t_fill[missing] = loc
    y = table[enc.benchmarks].to_numpy(float)
    rows, cols = np.nonzero(np.isfinite(y))
    inv_items = np.array([1.0 / n if np.isfinite(n) and n > 0 else 0.0 for n in enc.n_items])
    return ModelData(
        size_z=size_z,
        tokens_z=np.nan_to_num(tokens_z),
        tokens_missing=missing,
        tokens_group=group,
        # one size of one family: the same prior (sibling's or family's) for the whole group
        tokens_prior_loc=loc[first],
        tokens_prior_scale=scale[first],
        sub=np.array([enc.subfamilies.index(s) for s in table[SUBFAMILY].astype(str)]),
        coarse=np.array([enc.coarse.index(c) for c in table[FAMILY].astype(str)]),
        sub_coarse=np.array(enc.sub_coarse),
        instruct=table[INSTRUCT].to_numpy(float),
        x_fill=np.stack([size_z, t_fill, size_z * t_fill], axis=-1),
        floor=np.array(enc.floor),
        inv_items=inv_items,
        loading_mask=loading_mask(enc.benchmarks, enc.anchors, n_skills),
        obs_row=rows,
        obs_col=cols,
        y=y[rows, cols],
        boundary=np.flatnonzero((y[rows, cols] <= 0.0) | (y[rows, cols] >= 1.0)),
        n_coarse=len(enc.coarse),
        lifted=np.flatnonzero(np.asarray(enc.floor_learned, bool)),
        step=np.array(enc.score_step or [0.0] * len(enc.benchmarks), dtype=float),
    )


def covariates(size_z, tokens_z):
    """Design ``(z_size, z_tokens, z_size * z_tokens)``, last axis of length 3."""
    return jnp.stack([size_z, tokens_z, size_z * tokens_z], axis=-1)


def benchmark_mean(theta, loadings, difficulty, floor, offset=0.0, power=1.0):
    """Expected score: chance floor plus the rest of the scale times the link of skills
    (``offset``: benchmark-specific logit terms of an LLM, shape ``(..., n, j)``; ``power``:
    see :func:`link`)."""
    logit = jnp.einsum("...nk,...jk->...nj", theta, loadings) + difficulty[..., None, :] + offset
    return floor + (1.0 - floor) * link(logit, power)


def link(logit, power=1.0):
    """``sigmoid(logit) ** power``: the logistic for ``power = 1``; above 1 its lower tail
    falls ``power`` times faster than its upper tail rises (a model far below a benchmark's
    difficulty sits at chance sooner), ``ModelConfig.link_power``."""
    if _logistic(power):
        return jax_sigmoid(logit)
    return jnp.exp(power * jax.nn.log_sigmoid(logit))


def _logistic(power) -> bool:
    """Whether ``power`` is the constant 1 (no learned power): the plain logistic's path."""
    return isinstance(power, (int, float)) and power == 1.0


def learns_floor(data: ModelData) -> bool:
    """Whether a fit learns any floor (``ModelConfig.learned_floors`` names the answer kind
    of one of its benchmarks; otherwise it has no ``floor_lift`` site at all)."""
    return data.lifted is not None and len(data.lifted) > 0


def lifted_floor(chance, lift):
    """A benchmark's lower asymptote: its chance level raised by ``lift`` of the rest of the
    scale (``ModelConfig.learned_floors``); ``lift = 0`` is the chance level itself."""
    return chance + (1.0 - chance) * lift


def effective_floor(post, chance):
    """The floors a fit used: per draw, ``(S, 1, J)`` (broadcast over models), when it
    learned them (``floor_lift`` in ``post``), else the chance levels ``(J,)``."""
    chance = np.asarray(chance, dtype=float)
    if "floor_lift" not in post:
        return chance
    return np.asarray(lifted_floor(chance, np.asarray(post["floor_lift"])))[:, None, :]


def jax_sigmoid(x):
    return 0.5 * (jnp.tanh(0.5 * x) + 1.0)


def observation_sd(mu, inv_items, sigma_bench, floor=0.0, sigma_logit=0.0, power=1.0, logit=None):
    """Noise sd: binomial floor from the item count plus benchmark over-dispersion, additive
    (``sigma_bench``) and on the logit scale (``sigma_logit`` times the slope of the score in
    the logit: ``power * (mu - floor) * (1 - sigmoid(logit))`` for :func:`link`'s power, which
    is ``(mu - floor)(1 - mu)/(1 - floor)`` for the logistic: small near the floor and the
    ceiling). Without the ``logit`` the slope is rebuilt from ``mu`` (``sigmoid(logit) =
    g ** (1 / power)``, ``g`` the link's value); the model passes it (no power per cell, and
    float32 keeps the slope of a score within a few ulps of its floor)."""
    if logit is not None:
        slope = power * (mu - floor) * jax_sigmoid(-logit)
    elif _logistic(power):
        slope = (mu - floor) * (1.0 - mu) / (1.0 - floor)
    else:
        g = jnp.clip((mu - floor) / (1.0 - floor), 1e-30, 1.0)
        slope = power * (mu - floor) * (1.0 - g ** (1.0 / power))
    return jnp.sqrt(mu * (1.0 - mu) * inv_items + sigma_bench**2 + (sigma_logit * slope) ** 2)


class CensoredNormal(dist.Distribution):
    """``clip(Normal(loc, scale), 0, 1)``: point masses at 0 and 1, a density in between.

    ``half_step`` (per value, or 0): the recorded score was rounded to a step of twice that
    (scores recorded in whole percents). A rounded 0 is then any score below ``half_step`` (the
    point mass at 0 and the density up to it: ``P(Y < half_step)``), a rounded 1 any above
    ``1 - half_step``, and an interior value has the density of the score plus the rounding
    error, uniform over the step: its variance ``step^2 / 12`` is added to ``scale^2``
    (Sheppard's correction; exact to ``O((step / scale)^4)``, without the two normal CDFs per
    cell an interval probability would cost)."""

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.unit_interval
    reparametrized_params = ["loc", "scale"]

    def __init__(self, loc, scale, *, boundary=None, half_step=0.0, validate_args=None):
        # ``boundary``: indices of the values at exactly 0 or 1, when known in advance (the
        # observed data); only those need the costly normal log-CDF.
        self.loc, self.scale, self.boundary, self.half_step = loc, scale, boundary, half_step
        batch_shape = jnp.broadcast_shapes(jnp.shape(loc), jnp.shape(scale))
        super().__init__(batch_shape=batch_shape, validate_args=validate_args)

    def sample(self, key, sample_shape=()):
        base = dist.Normal(self.loc, self.scale).sample(key, sample_shape)
        return jnp.clip(base, 0.0, 1.0)

    def log_prob(self, value):
        h = jnp.broadcast_to(jnp.asarray(self.half_step, dtype=jnp.result_type(float)), jnp.shape(value))
        dens = dist.Normal(self.loc, jnp.sqrt(self.scale**2 + h**2 / 3.0)).log_prob(value)
        if self.boundary is None:
            z = (value + jnp.where(value <= 0.0, h, -h) - self.loc) / self.scale
            tail = log_ndtr(jnp.where(value <= 0.0, z, -z))
            return jnp.where((value <= 0.0) | (value >= 1.0), tail, dens)
        b = self.boundary
        zero = value[b] <= 0.0
        z = (value[b] + jnp.where(zero, h[b], -h[b]) - self.loc[b]) / self.scale[b]
        return dens.at[b].set(log_ndtr(jnp.where(zero, z, -z)))


def spread_prior(scale) -> dist.Distribution:
    """Prior of a spread (hierarchical scale or over-dispersion) of mean ``scale``:
    Gamma(2, 2 / scale), whose density vanishes at 0 (a spread the data put near zero does
    not pull NUTS into the neck of a funnel)."""
    return dist.Gamma(2.0, 2.0 / scale)


#: The standardised family offsets and the spread each one scales (:func:`pinned_offsets`).
CENTRED_SITES = {"z_coarse": "sigma_coarse", "z_sub": "sigma_sub"}

def loadings_matrix(free, mask) -> jnp.ndarray:
    """(..., J, K) loadings: the free ones (..., F) where ``mask`` is 1, 1 where it is 2 (an
    anchor on its skill), 0 elsewhere."""
    free = jnp.asarray(free)
    out = jnp.broadcast_to(jnp.asarray(np.where(mask == 2.0, 1.0, 0.0), free.dtype), free.shape[:-1] + mask.shape)
    return out.at[(..., *np.nonzero(mask == 1.0))].set(free)


def anchor_block(loadings, mask) -> jnp.ndarray:
    """(..., K, K) the anchor benchmarks' loadings, row ``k`` the anchor of skill ``k`` (the
    identity: each anchor loads 1 on its skill only)."""
    rows = np.argmax(np.asarray(mask) == 2.0, axis=0)
    return loadings[..., rows, :]


def coarse_pivot_skills(data: "ModelData", slopes) -> jnp.ndarray:
    """(..., C, K) the shared slopes' part of each coarse family's skills at its pivot
    (:func:`deviation_pivots`)."""
    return jnp.einsum("cd,...dk->...ck", jnp.asarray(deviation_pivots(data)[0], jnp.float32), slopes)


def sub_pivot_skills(data: "ModelData", slopes) -> jnp.ndarray:
    """(..., S, K) the shared slopes' part of each sub-family's skills at its own pivot (the
    mean covariates of its LLMs in the likelihood) beyond its coarse family's pivot: what a
    sub-family's offset adds to pin its own models (0 for a sub-family without any)."""
    sub, n_sub = np.asarray(data.sub), data.sub_coarse.shape[0]
    seen = _family_weights(data, sub, n_sub).any(0)[:, None]
    own = _pivots(data, sub, n_sub)
    diff = np.where(seen, own - deviation_pivots(data)[0][np.asarray(data.sub_coarse)], 0.0)
    return jnp.einsum("sd,...dk->...sk", jnp.asarray(diff, jnp.float32), slopes)


def pinned_shift(alpha, pivot_skills, anchors):
    """What the data add to family offsets ``alpha`` (..., G, K) (coarse efficiencies, or
    sub-family offsets from them) to give what they pin: the offsets' anchor logits at the
    family's pivot, ``(alpha + pivot_skills) @ anchors^T``,
    minus ``alpha`` (``anchors``: :func:`anchor_block`). Skill ``k``'s shift uses skills
    ``< k`` only (the block is unit lower triangular)."""
    return jnp.einsum("...ck,...jk->...cj", alpha + pivot_skills, anchors) - alpha


def unpin(v, c, pivot_skills, anchors):
    """The offsets ``alpha`` (..., G, K) from ``v = alpha + c * pinned_shift(alpha)``:
    solved skill by skill (skill ``k``'s shift uses skills ``< k`` only)."""
    alpha = []
    for j in range(v.shape[-1]):
        shift = pivot_skills[..., j] + sum(anchors[..., j, i, None] * (alpha[i] + pivot_skills[..., i])
                                           for i in range(j))
        alpha.append(v[..., j] - c[..., j] * shift)
    return jnp.stack(alpha, -1)


def pinned_offsets(name: str, plate: str, df: float | None, spread, c, pivot_skills, anchors):
    """Standardised family offsets ``z`` (G, K) of a spread ``sigma`` (K,), sampled (site
    ``name``, plate ``plate``) in the coordinates ``w = (alpha + c shift) / sigma**(1 - c)``,
    ``alpha = sigma z``, ``shift`` the :func:`pinned_shift`, ``c`` (G, K) in [0, 1].

    ``c = 0`` is the non-centred form (``w = z``); ``c = 1`` the centred one, where ``w`` is
    what the family's models pin: its anchor logits at its pivot (a coarse family:
    :func:`coarse_pivot_skills`; a sub-family, whose offset is relative to its coarse
    family's: :func:`sub_pivot_skills`); values between interpolate (Papaspiliopoulos, Roberts
    and Skold 2007; Gorinova, Moore and Hoffman 2020). The prior of ``z`` is the same for every
    ``c``: only the coordinates NUTS moves in change. Why: a family the data pin has its anchor
    logits fixed, so in the non-centred form ``z`` and ``sigma`` lie on a curved ridge (``z ~ 1
    / sigma``) that a diagonal mass cannot follow, and so do ``z`` and the shared slopes (most
    families train every model on one token count) and ``z`` and the anchors' loadings on
    earlier skills (a rotation of the skills: HellaSwag's loading on skill 1 moves phi's skill
    3); centred, each is straight or gone. A family the data barely see is a funnel in the
    centred form: its ``c`` stays near 0 (:func:`centredness`). The map ``w -> z`` is
    triangular (skill by skill) with Jacobian ``prod sigma^-c``."""
    k = spread.shape[-1]
    with numpyro.plate(plate, c.shape[0], dim=-2), numpyro.plate("skill", k, dim=-1):
        w = numpyro.sample(name, dist.ImproperUniform(constraints.real, (), ()))
    z = unpin(w * spread ** (1.0 - c), c, pivot_skills, anchors) / spread
    log_jac = -jnp.sum(c * jnp.log(spread))
    numpyro.factor(f"{name}_prior", jnp.sum(standard_prior(df).log_prob(z)) + log_jac)
    return z


def centredness(z_draws) -> np.ndarray:
    """``c`` (G, K) for :func:`pinned_offsets` from posterior draws (..., G, K) of the
    non-centred ``z``: ``1 - var(z)``, clipped to [0, 1]. For normal offsets this is the
    optimal ``c`` (the share of an offset's prior variance that the data remove:
    ``sigma^2 / (sigma^2 + s^2)``, ``s`` the data's standard error of the offset, since
    ``var(z) = s^2 / (sigma^2 + s^2)``): 0 for an offset the data leave at its prior, 1 for
    one they pin."""
    z = np.asarray(z_draws, float)
    return np.clip(1.0 - z.reshape(-1, *z.shape[-2:]).var(axis=0), 0.0, 1.0).astype(np.float32)


def recentre(sites: dict, centring: dict, data: "ModelData", inverse: bool = False) -> dict:
    """The offsets of :data:`CENTRED_SITES` in ``sites`` (constrained values of the model's
    sites and ``loadings``, any leading batch axes) mapped from ``z`` to the sampled
    coordinates ``w`` of :func:`pinned_offsets`, or back with ``inverse``; ``c =
    centring[site]``. Returns only the mapped sites."""
    anchors = anchor_block(sites["loadings"], data.loading_mask)
    out = {}
    for name, pivot in (("z_coarse", coarse_pivot_skills(data, sites["slopes"])),
                        ("z_sub", sub_pivot_skills(data, sites["slopes"]))):
        sigma, c = sites[CENTRED_SITES[name]][..., None, :], centring[name]
        if inverse:
            out[name] = unpin(sites[name] * sigma ** (1.0 - c), c, pivot, anchors) / sigma
        else:
            alpha = sigma * sites[name]
            out[name] = (alpha + c * pinned_shift(alpha, pivot, anchors)) / sigma ** (1.0 - c)
    return out


def folded_half_normal(raw_name: str, name: str, scale):
    """A half-normal site sampled folded: ``name = |x|`` (deterministic), ``x ~ N(0,
    scale)`` sampled as ``raw_name``. Exactly HalfNormal(scale), without the log transform of a positive site: a value near 0
    crosses it freely instead of sitting at the end of a long tail. ``x``'s sign means nothing
    (the diagnostics skip ``*_unfolded`` sites)."""
    return numpyro.deterministic(name, jnp.abs(numpyro.sample(raw_name, dist.Normal(0.0, scale))))


def standard_prior(df: float | None) -> dist.Distribution:
    """A standardised family offset (``Priors.efficiency_df``): N(0, 1), or Student-t with
    ``df`` degrees of freedom (heavy
    tails: a few outlying families, e.g. code models on commonsense benchmarks, do not widen
    the population's spread for every other)."""
    return dist.Normal(0.0, 1.0) if df is None else dist.StudentT(df, 0.0, 1.0)


def _centre(z):
    return z - jnp.mean(z, axis=0, keepdims=True)


def orthogonal_to(u, loadings):
    """``u`` (..., G, J) minus its projection on the loadings' columns (..., J, K): the part
    of a family's benchmark profile that no skill can explain. Without it a profile along
    the loadings is a second copy of the family's skills (a ridge NUTS crawls along).
    The columns are made orthonormal by Gram-Schmidt (K is small; elementwise operations,
    no LAPACK call per gradient); the anchor pattern keeps them independent."""
    basis = []
    for k in range(loadings.shape[-1]):
        v = loadings[..., :, k]
        for q in basis:
            v = v - (q * v).sum(-1, keepdims=True) * q
        basis.append(v / jnp.sqrt((v * v).sum(-1, keepdims=True)))
    for q in basis:
        q = q[..., None, :]
        u = u - (u * q).sum(-1, keepdims=True) * q
    return u


def anchor_rows(mask: np.ndarray) -> np.ndarray:
    """(J,) 1 at the anchor benchmarks (rows of the loading ``mask`` with a loading fixed at 1)."""
    return (np.asarray(mask) == 2.0).any(axis=1).astype(float)


def profiled_benchmarks(mask: np.ndarray) -> np.ndarray:
    """(P,) indices of the benchmarks a family profile has entries for: all but the anchors.
    A family's skills are its anchors' offsets, so an anchor's profile would be a second
    copy of them (a ridge NUTS crawls along); the other benchmarks' profiles are read
    relative to the anchors."""
    return np.flatnonzero(anchor_rows(mask) == 0.0)


def _profile(name: str, n_groups: int, group_of_llm, data: ModelData, config: ModelConfig):
    """Per-cell logit offset of a family's benchmark profile ``sigma_j * z[group, j]`` over
    the :func:`profiled_benchmarks` (z centred over groups: the difficulties keep the
    location)."""
    n_bench = data.floor.shape[0]
    cols = profiled_benchmarks(data.loading_mask)
    if not len(cols):  # every benchmark an anchor: no profile to sample
        return 0.0
    with numpyro.plate("profiled_benchmark", len(cols)):
        sigma = numpyro.sample(f"sigma_{name}", spread_prior(config.priors.family_bench))
    with numpyro.plate(f"{name}_group", n_groups, dim=-2), numpyro.plate("profiled_benchmark", len(cols), dim=-1):
        z = numpyro.sample(f"z_{name}", dist.Normal(0.0, 1.0))
    u = numpyro.deterministic("family_profile", jnp.zeros((n_groups, n_bench), z.dtype).at[:, cols].set(sigma * _centre(z)))
    new = with_new_groups(jnp.zeros((0, len(cols))), f"z_{name}_new", data.new_coarse, dist.Normal(0.0, 1.0))
    u = jnp.concatenate([u, jnp.zeros((new.shape[0], n_bench)).at[:, cols].set(sigma * new)])
    return u[group_of_llm[data.obs_row], data.obs_col]


def slope_deviation(tau, z):
    """Slope deviations (..., C, D, K) of coarse families, ``tau * z``, ``tau`` (..., D)
    shared by the skills (D = :data:`DEVIATION_COVARIATES`). Works on JAX arrays (the model)
    and on NumPy posterior draws with a leading sample axis (forecasts, plots)."""
    return tau[..., None, :, None] * z


def deviation_distance(dx, knee=None, low=0.0, high=0.0):
    """The distance a slope deviation multiplies: ``dx`` itself (``knee=None``), or ``dx``
    inside the family's range ``[low, high]`` (both relative to the pivot, ``low <= 0 <=
    high``) and beyond it the range's edge plus ``e (1 + (e / knee)^2)^(-1/4)`` of the excess
    ``e``: ~``e`` just outside, ~``sqrt(knee |e|)`` far out. Continuous with a continuous
    slope (latent token counts move ``dx``), so a deviation still tilts the family's law
    around its own models, and the same on NumPy and JAX arrays."""
    if knee is None:
        return dx
    inside = dx.clip(low, high)
    excess = dx - inside
    return inside + excess * (1.0 + (excess / knee) ** 2) ** -0.25


def deviation_term(dx, dev, knee=None, low=0.0, high=0.0):
    """Skill offsets (..., K) of slope deviations ``dev`` (..., D, K) at covariate distances
    ``dx`` (..., 3) from the family's pivot (only the first D covariates deviate), grown
    with the distance as :func:`deviation_distance` says (``low``, ``high``: (..., 3) edges
    of the family's covariate range relative to its pivot)."""
    n_dev = dev.shape[-2]
    low, high = (v if np.ndim(v) == 0 else v[..., :n_dev] for v in (low, high))
    return (deviation_distance(dx[..., :n_dev], knee, low, high)[..., None] * dev).sum(-2)


def _family_weights(data: ModelData, group=None, n_groups=None) -> np.ndarray:
    """(N, G) True where an LLM with a cell in the likelihood belongs to a group: its coarse
    family (default), or ``group`` (N,) of ``n_groups`` (e.g. its sub-family)."""
    n_llm = np.shape(data.size_z)[0]
    group = np.asarray(data.coarse) if group is None else group
    n_groups = data.n_coarse if n_groups is None else n_groups
    rows = np.asarray(data.obs_row)
    in_lik = np.ones(rows.shape[0], bool) if data.cell_mask is None else np.asarray(data.cell_mask, bool)
    seen = np.zeros(n_llm, bool)
    seen[rows[in_lik]] = True  # the LLM is in the likelihood
    return (group[:, None] == np.arange(n_groups)[None, :]) & seen[:, None]


def _pivots(data: ModelData, group=None, n_groups=None) -> np.ndarray:
    """(C, 3) mean ``x_fill`` of each coarse family's LLMs with a cell in the likelihood (0 for
    a family without any, e.g. held out by a backtest mask): :func:`family_centres` of the
    model's arrays; of other groups with ``group`` / ``n_groups`` (:func:`_family_weights`).
    NumPy: the mask is data, so this is computed once, not per gradient."""
    w = _family_weights(data, group, n_groups).astype(float)
    count = w.sum(0)[:, None]
    return np.where(count > 0, (w.T @ np.asarray(data.x_fill, float)) / np.maximum(count, 1.0), 0.0)


def _ranges(data: ModelData) -> tuple[np.ndarray, np.ndarray]:
    """(C, 3) lowest and highest ``x_fill`` of each coarse family's LLMs with a cell in the
    likelihood (both 0 for a family without any): :func:`family_ranges` of the model's arrays."""
    w = _family_weights(data)[:, :, None]  # (N, C, 1)
    x = np.asarray(data.x_fill, float)[:, None, :]  # (N, 1, 3)
    low = np.where(w, x, np.inf).min(0)
    high = np.where(w, x, -np.inf).max(0)
    seen = w.any(0)
    return np.where(seen, low, 0.0), np.where(seen, high, 0.0)


def deviation_pivots(data: ModelData):
    """``(pivot, low, high)``, each (C, 3): the coarse families' pivots and covariate ranges
    that :func:`skills_model`'s slope deviations use: ``data.frame`` when given (a fitter
    whose cell mask is a traced argument computes it on the host), else from the data."""
    if data.frame is not None:
        return data.frame
    return (_pivots(data), *_ranges(data))


def with_new_groups(z, name: str, n_new: int, prior: dist.Distribution):
    """Values ``z`` (G, ...) of the fitted groups followed by ``n_new`` groups the fit never
    saw, drawn from ``prior`` (site ``name``): how a forecast meets a new family."""
    if not n_new:
        return z
    with numpyro.plate(f"{name}_group", n_new, dim=-1):
        new = numpyro.sample(name, prior.expand(z.shape[1:]).to_event(z.ndim - 1))
    return jnp.concatenate([z, new], axis=0)


def family_offsets(name: str, plate: str, n_groups: int, spread, df, centring, pivot_skills, anchors):
    """Standardised family offsets ``z`` (G, K), centred over the groups (the benchmark
    difficulties keep the skills' location). Sampled non-centred, or in the partially
    centred coordinates of :func:`pinned_offsets` when ``centring`` (G, K) is given: the
    same prior, other coordinates (see :mod:`sloth_bayes.inference`); ``pivot_skills`` is
    a function, called only then."""
    if centring is not None:
        z = pinned_offsets(name, plate, df, spread, centring, pivot_skills(), anchors)
    else:
        with numpyro.plate(plate, n_groups, dim=-2), numpyro.plate("skill", spread.shape[-1], dim=-1):
            z = numpyro.sample(name, standard_prior(df))
    return _centre(z)


def tokens_with_latent(data: ModelData):
    """Standardised log tokens (N,), unknown counts replaced by latent ones: one per (family,
    size) group, centred on the coarse family's counts or tightly on a same-size sibling's."""
    tokens_z = jnp.asarray(data.tokens_z)
    if not data.tokens_missing.shape[0]:
        return tokens_z
    t_grp = jnp.zeros((0,))
    if data.tokens_prior_loc.shape[0]:
        with numpyro.plate("tokens_group", data.tokens_prior_loc.shape[0]):
            t_grp = numpyro.sample("tokens_shared", dist.Normal(data.tokens_prior_loc, data.tokens_prior_scale))
    if data.new_tokens_loc is not None and len(data.new_tokens_loc):
        with numpyro.plate("new_tokens_group", len(data.new_tokens_loc)):
            new = numpyro.sample("tokens_shared_new", dist.Normal(data.new_tokens_loc, data.new_tokens_scale))
        t_grp = jnp.concatenate([t_grp, new])
    t_lat = numpyro.deterministic("tokens_latent", t_grp[data.tokens_group])
    return tokens_z.at[data.tokens_missing].set(t_lat)


def deviation_skills(data: ModelData, config: ModelConfig, x, k: int):
    """Skill offsets (N, K) of the coarse families' slope deviations at covariates ``x``,
    pivoting on each family's mean covariates (else, in a family trained on one token count,
    the tokens deviation is a second intercept), growing as :func:`deviation_distance` says."""
    n_dev = len(DEVIATION_COVARIATES)
    tau = numpyro.sample("tau_slope", spread_prior(config.priors.deviation).expand([n_dev]).to_event(1))
    dz = numpyro.sample("z_slope", dist.Normal(0.0, 1.0).expand([data.n_coarse, n_dev, k]).to_event(3))
    dz = with_new_groups(dz, "z_slope_new", data.new_coarse, dist.Normal(0.0, 1.0))
    pivots, low_c, high_c = deviation_pivots(data)
    pivot = jnp.asarray(pivots, jnp.float32)[data.coarse]
    low, high = (jnp.asarray(edge, jnp.float32)[data.coarse] - pivot for edge in (low_c, high_c))
    dev = slope_deviation(tau, dz)  # (C, D, K)
    return deviation_term(x - pivot, dev[data.coarse], config.priors.deviation_knee, low, high)


def saturating_skills(theta, rate):
    """Skills ``theta`` (..., K) of the linear law, bent above the population's centre
    (``theta > 0``; 0 is the skill of a typical family's base model at the table's mean log
    size and log tokens): there each further logit adds ``exp(-rate * e)`` (``e`` the excess
    over the centre), so skill ``k`` rises at most ``1 / rate_k`` above it and its gain per
    doubling of parameters or tokens decays exponentially. A family already strong for its
    compute (an efficient one, or a small model trained on many tokens per parameter) is
    nearer that ceiling: its larger models gain less. ``rate`` (K,) >= 0; at 0, and below
    the centre, the skills are ``theta`` (the linear law). Continuous with a continuous
    gain; the same on NumPy and JAX arrays."""
    excess = jnp.maximum(theta, 0.0)
    on = rate > 0
    safe = jnp.where(on, rate, 1.0)  # no 0 / 0 in the branch (or the gradient) not taken
    return theta - excess + jnp.where(on, -jnp.expm1(-safe * excess) / safe, excess)


def saturation_rates(scale, k: int):
    """Per-skill rates (K,) of :func:`saturating_skills`, partially pooled across skills:
    ``tau * |u_k|``, ``u_k ~ N(0, 1)`` sampled folded (the most prior mass near 0, the linear
    law), ``tau ~ Gamma(2, 2 / scale)`` shared by the skills."""
    tau = numpyro.sample("tau_saturation", spread_prior(scale))
    with numpyro.plate("skill", k, dim=-1):
        u = numpyro.sample("saturation_rate_unfolded", dist.Normal(0.0, 1.0))
    return numpyro.deterministic("saturation_rate", tau * jnp.abs(u))


def skills_model(data: ModelData, config: ModelConfig, y=None):
    """NumPyro model of the skills scaling law. ``y`` = observed cells (None to simulate)."""
    pr, k = config.priors, config.n_skills
    n_sub, n_bench = data.sub_coarse.shape[0], data.floor.shape[0]
    mask, centring = data.loading_mask, data.centring or {}

    # shared slopes, instruct shift and the families' spreads, per skill
    with numpyro.plate("covariate", 3, dim=-2), numpyro.plate("skill", k, dim=-1):
        slopes = numpyro.sample("slopes", dist.Normal(0.0, pr.slope))
    with numpyro.plate("skill", k, dim=-1):
        instruct_shift = numpyro.sample("instruct_shift", dist.Normal(0.0, pr.instruct))
        sigma_sub = numpyro.sample("sigma_sub", spread_prior(pr.sub))
        sigma_coarse = numpyro.sample("sigma_coarse", spread_prior(pr.coarse))
    # loadings: each anchor loads 1 on its skill only, the others are free and signed
    n_free = int(np.sum(mask == 1.0))
    free = jnp.zeros((0,))
    if n_free:
        with numpyro.plate("loading_free", n_free):
            free = numpyro.sample("loadings_free", dist.Normal(0.0, pr.loading))
    loadings = numpyro.deterministic("loadings", loadings_matrix(free, mask))
    anchors = anchor_block(loadings, mask)

    # family efficiencies: coarse families, and sub-families nested in them
    # (forecasts: then the groups the fit never saw, drawn from the population)
    offset = standard_prior(pr.efficiency_df)
    z_coarse = family_offsets("z_coarse", "coarse_family", data.n_coarse, sigma_coarse, pr.efficiency_df,
                              centring.get("z_coarse"), lambda: coarse_pivot_skills(data, slopes), anchors)
    alpha_coarse = numpyro.deterministic("alpha_coarse", sigma_coarse * z_coarse)
    z_new = with_new_groups(jnp.zeros((0, k)), "z_coarse_new", data.new_coarse, offset)
    alpha_coarse = jnp.concatenate([alpha_coarse, sigma_coarse * z_new])
    z_sub = family_offsets("z_sub", "family", n_sub, sigma_sub, pr.efficiency_df,
                           centring.get("z_sub"), lambda: sub_pivot_skills(data, slopes), anchors)
    alpha = numpyro.deterministic("alpha", alpha_coarse[data.sub_coarse] + sigma_sub * z_sub)
    new_sub = np.zeros(0, int) if data.new_sub_coarse is None else np.asarray(data.new_sub_coarse)
    z_new = with_new_groups(jnp.zeros((0, k)), "z_sub_new", len(new_sub), offset)
    alpha = jnp.concatenate([alpha, alpha_coarse[new_sub] + sigma_sub * z_new])

    # skills of every LLM
    x = covariates(data.size_z, tokens_with_latent(data))  # (N, 3)
    theta = alpha[data.sub] + data.instruct[:, None] * instruct_shift + x @ slopes
    if config.slope_deviations:
        theta = theta + deviation_skills(data, config, x, k)
    if config.saturation:
        theta = saturating_skills(theta, saturation_rates(pr.saturation_rate, k))
    numpyro.deterministic("skills", theta)

    # benchmarks: difficulty, noise, instruct shift beyond the skills, floors, link
    with numpyro.plate("benchmark", n_bench):
        difficulty = numpyro.sample("difficulty", dist.Normal(0.0, pr.difficulty))
        sigma_bench = folded_half_normal("sigma_bench_unfolded", "sigma_bench", pr.bench_noise)
        sigma_logit = numpyro.sample("sigma_logit", spread_prior(pr.logit_noise))
    floor_all = jnp.asarray(data.floor)
    if learns_floor(data):
        raw = numpyro.sample("floor_lift_unfolded", dist.Normal(0.0, pr.floor_lift).expand([len(data.lifted)]))
        lift = numpyro.deterministic("floor_lift", jnp.zeros(n_bench).at[data.lifted].set(jnp.abs(raw)))
        floor_all = lifted_floor(floor_all, lift)

    row, col = data.obs_row, data.obs_col
    logit = jnp.sum(theta[row] * loadings[col], -1) + difficulty[col]
    with numpyro.plate("benchmark", n_bench):
        shift_b = numpyro.sample("instruct_bench", dist.Normal(0.0, pr.instruct_bench))
    # along the loadings it would copy ``instruct_shift``: keep the orthogonal part only
    shift_b = orthogonal_to(shift_b[None, :], loadings)[0]
    logit = logit + data.instruct[row] * shift_b[col]
    if config.family_profile:
        logit = logit + _profile("family_bench", data.n_coarse, data.coarse, data, config)
    log_power = numpyro.sample("log_link_power", dist.Normal(0.0, pr.link_power))
    power = numpyro.deterministic("link_power", jnp.exp(log_power))
    floor = floor_all[col]
    mu = floor + (1.0 - floor) * link(logit, power)
    sd = observation_sd(mu, data.inv_items[col], sigma_bench[col], floor, sigma_logit[col], power, logit)

    # observed scores: censored at 0 and 1, rounded ones read as intervals
    with numpyro.plate("cell", row.shape[0]), numpyro.handlers.mask(
        mask=True if data.cell_mask is None else data.cell_mask
    ):
        half_step = 0.0 if data.step is None else 0.5 * jnp.asarray(data.step)[col]
        boundary = None if y is None else data.boundary
        numpyro.sample("y", CensoredNormal(mu, sd, boundary=boundary, half_step=half_step), obs=y)
