"""Simulated leaderboards drawn from the model itself.

Two simulators share the model's generative structure:

* :func:`simulate_from_fit`: the scores of a real table's design (its LLMs, families, sizes,
  tokens and missing cells) drawn from the posterior predictive of a fit to it, at one
  posterior draw whose parameter values are returned. A realistic table with a known truth:
  the shipped ``data/simulated_leaderboard.csv`` (``scripts/make_simulated.py``).
* :func:`simulate_table`: parameters drawn from the prior of
  :func:`~sloth_bayes.model.skills_model` (NumPyro ``Predictive`` with ``y=None``) and scores
  from its likelihood, on a template's design or a made-up one: for parameter recovery and
  simulation-based calibration (:mod:`sloth_bayes.sbc`).

>>> from sloth_bayes.simulate import simulate_table
>>> table, truth = simulate_table(seed=1)                          # doctest: +SKIP
>>> truth["loadings"].shape                                        # doctest: +SKIP
(6, 3)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .benchmarks import V1_BENCHMARKS
from .data import META_COLUMNS, TOKENS, score_columns, validate_table
from .model import Encoding, ModelConfig, ModelData, encode, make_encoding

__all__ = [
    "SimDesign",
    "draw_prior",
    "encode_table",
    "plausibility",
    "prepare_design",
    "simulate_from_fit",
    "simulate_table",
    "synthetic_design",
    "write_simulated",
]

#: Made-up coarse family names of the synthetic design (cycled with a number if needed).
FAMILY_NAMES = (
    "aurora", "borealis", "cirrus", "delta", "ember", "fjord", "glacier", "halo",
    "iris", "juniper", "kestrel", "lumen", "meridian", "nimbus", "orbit", "prism",
)  # fmt: skip
#: Model sizes (billions of parameters) a synthetic family picks from.
SIZE_LADDER = (0.1, 0.16, 0.3, 0.5, 1.0, 1.5, 2.0, 3.0, 7.0, 8.0, 13.0, 14.0, 34.0, 40.0, 70.0, 100.0)
#: Sites of the model that are not parameters (the observations).
OBSERVED_SITES = ("y",)


# --- designs ---------------------------------------------------------------------------------
def synthetic_design(
    n_families: int = 5,
    *,
    benchmarks=None,
    seed: int = 0,
    sizes_per_family: tuple[int, int] = (3, 5),
    instruct_share: float = 0.6,
    finetune_share: float = 0.3,
    missing_tokens: float = 0.15,
    missing_cells: float = 0.1,
) -> pd.DataFrame:
    """A made-up leaderboard design: who is in the table and which cells are observed.

    Each coarse family gets 3-5 base models with sizes between 0.1B and 100B and its own
    token budget (trillions, varying a little with size); an instruct sub-family
    (``<family>-instruct``) re-tunes some of the base models; some families also get a
    third-party fine-tune (``<family>-community``, instruct). A share of the token counts
    is missing (the model treats them as latent) and a share of the score cells is missing
    (every LLM keeps at least one observed score, every benchmark at least two).

    Parameters
    ----------
    n_families : number of coarse families.
    benchmarks : benchmark columns (default: the six v1 benchmarks).
    seed : seed of the design (numpy); independent of the parameter draw.
    sizes_per_family : (min, max) number of base models per family.
    instruct_share : probability that a base model has an instruct variant.
    finetune_share : probability that a family has a third-party fine-tune.
    missing_tokens, missing_cells : share of missing token counts / score cells.

    Returns
    -------
    pandas.DataFrame
        :data:`~sloth_bayes.data.META_COLUMNS` plus one column per benchmark holding 0.5 in
        the cells to observe and NaN elsewhere (placeholders, not scores).
    """
    benchmarks = list(V1_BENCHMARKS if benchmarks is None else benchmarks)
    rng = np.random.default_rng(seed)
    rows = []
    for f in range(n_families):
        name = FAMILY_NAMES[f % len(FAMILY_NAMES)] + (
            "" if f < len(FAMILY_NAMES) else f"{f // len(FAMILY_NAMES) + 1}"
        )
        n = int(rng.integers(sizes_per_family[0], sizes_per_family[1] + 1))
        sizes = np.sort(rng.choice(SIZE_LADDER, size=min(n, len(SIZE_LADDER)), replace=False))
        log_t = rng.uniform(np.log(0.3), np.log(15.0))  # the family's token budget
        tokens = np.exp(log_t + 0.3 * rng.standard_normal(len(sizes)))
        for s, t in zip(sizes, tokens):
            rows.append((f"{name}-{s:g}b", name, name, False, float(s), float(t)))
            if rng.random() < instruct_share:
                rows.append(
                    (f"{name}-{s:g}b-instruct", name, f"{name}-instruct", True, float(s), float(t))
                )
        if rng.random() < finetune_share:
            s, t = sizes[-1], tokens[-1]
            rows.append(
                (f"{name}-{s:g}b-community", name, f"{name}-community", True, float(s), float(t))
            )
    table = pd.DataFrame(rows, columns=list(META_COLUMNS))
    table.loc[rng.random(len(table)) < missing_tokens, TOKENS] = np.nan

    observed = rng.random((len(table), len(benchmarks))) >= missing_cells
    observed[np.arange(len(table)), rng.integers(len(benchmarks), size=len(table))] = True
    for j in range(len(benchmarks)):
        if observed[:, j].sum() < 2:
            observed[rng.choice(len(table), size=2, replace=False), j] = True
    for j, b in enumerate(benchmarks):
        table[b] = np.where(observed[:, j], 0.5, np.nan)
    return table


@dataclass
class SimDesign:
    """A design encoded for the model: the table (``table``, with the leaderboard's
    columns: placeholders from :func:`prepare_design`, real scores from
    :func:`encode_table`), the benchmark metadata, the encoding and the model arrays."""

    table: pd.DataFrame
    meta: pd.DataFrame
    encoding: Encoding
    data: ModelData
    config: ModelConfig

    @property
    def benchmarks(self) -> list[str]:
        return list(self.encoding.benchmarks)

    def coords(self) -> dict[str, list]:
        """Coordinates of the parameter dims (as in a fit's posterior), as plain lists."""
        from .inference import _tree_layout

        coords, _, _ = _tree_layout(self.data, self.encoding, self.config)
        return {k: np.asarray(v).tolist() for k, v in coords.items() if k != "cell"}

    def fill(self, y) -> pd.DataFrame:
        """The leaderboard table with the observed cells set to ``y`` (one value per cell, in
        the order of ``data.y``)."""
        out = self.table.copy()
        scores = np.full((len(out), len(self.benchmarks)), np.nan)
        scores[np.asarray(self.data.obs_row), np.asarray(self.data.obs_col)] = np.asarray(y, float)
        for j, b in enumerate(self.benchmarks):
            out[b] = scores[:, j]
        return out


def prepare_design(
    template: pd.DataFrame | None = None,
    config: ModelConfig | None = None,
    *,
    benchmarks=None,
    floors=None,
    n_items=None,
    seed: int = 0,
    **design_kwargs,
) -> SimDesign:
    """Encode the design of ``template`` (or of :func:`synthetic_design` when None).

    A template keeps its LLMs, families, instruct flags, sizes, token counts (missing ones
    stay missing) and its pattern of observed cells; its scores are not used.
    """
    config = config or ModelConfig()
    if template is None:
        design = synthetic_design(benchmarks=benchmarks, seed=seed, **design_kwargs)
        benchmarks = [c for c in design.columns if c not in META_COLUMNS]
    else:
        if design_kwargs:
            raise TypeError(
                f"{sorted(design_kwargs)} only apply to the synthetic design (template=None)"
            )
        benchmarks = list(score_columns(template) if benchmarks is None else benchmarks)
        design = template.copy()
        for b in benchmarks:  # placeholders: only the pattern of observed cells matters
            design[b] = np.where(pd.to_numeric(template[b], errors="coerce").notna(), 0.5, np.nan)
    out = encode_table(design, config, benchmarks=benchmarks, floors=floors, n_items=n_items)
    # simulated scores are exact: the placeholders' grid is not a rounding of theirs
    out.encoding.score_step = [0.0] * len(out.encoding.benchmarks)
    out.data = out.data._replace(step=np.zeros(len(out.encoding.benchmarks)))
    return out


def encode_table(
    table: pd.DataFrame,
    config: ModelConfig | None = None,
    *,
    benchmarks=None,
    floors=None,
    n_items=None,
) -> SimDesign:
    """Validate and encode a leaderboard table as it is (its scores kept, unlike
    :func:`prepare_design`): the design of a real table, e.g. for a
    :class:`~sloth_bayes.sbc.CompiledFitter` that fits it under several cell masks.

    The encoding is that of ``SlothBayes.fit`` on the same table (same benchmarks, anchors,
    standardisation); ``data.y`` holds the observed scores.
    """
    config = config or ModelConfig()
    clean, meta = validate_table(table, benchmarks, floors=floors, n_items=n_items)
    enc = make_encoding(clean, meta, config)
    data = encode(clean, enc, config.n_skills)
    return SimDesign(table=clean, meta=meta, encoding=enc, data=data, config=config)


# --- draws from the prior ---------------------------------------------------------------------
def draw_prior(
    design: SimDesign, n: int = 1, *, seed=0, params: dict | None = None, config=None
) -> dict:
    """``n`` joint draws of parameters and scores from the prior of the model on ``design``.

    The draws are made in one vectorised call (NumPyro's ``Predictive(parallel=True)``:
    memory grows with ``n``); the same seed gives the same draws as one at a time, to float
    rounding (~1e-6), in about half the time (the prior tests of ``test_model.py``, 4,000
    draws each: 32 / 30 / 24 s -> 16 / 16 / 14 s).

    Parameters
    ----------
    design : from :func:`prepare_design`.
    n : number of draws (leading axis of every array).
    seed : int or JAX key.
    params : values to fix instead of drawing them (e.g. ``{"slopes": ...}``), unbatched.
    config : the model's configuration (default: the design's).

    Returns
    -------
    dict of numpy arrays
        Every latent and deterministic site (names as in a fit's posterior) plus ``y``, the
        simulated scores of the observed cells; each with leading axis ``n``.
    """
    import jax
    from numpyro.handlers import condition
    from numpyro.infer import Predictive

    from .inference import to_key
    from .model import skills_model

    config = config or design.config
    model = condition(skills_model, params) if params else skills_model
    draws = Predictive(model, num_samples=n, parallel=True)(to_key(seed), design.data, config, y=None)
    out = {k: np.asarray(v) for k, v in jax.device_get(draws).items()}
    for k, v in (params or {}).items():
        out[k] = np.broadcast_to(np.asarray(v), (n,) + np.shape(v)).copy()
    return out


def simulate_table(
    template: pd.DataFrame | None = None,
    config: ModelConfig | None = None,
    *,
    benchmarks=None,
    seed: int = 0,
    n_families: int = 5,
    params: dict | None = None,
    floors=None,
    n_items=None,
    **design_kwargs,
) -> tuple[pd.DataFrame, dict]:
    """A leaderboard table simulated from the model, and the parameters that generated it.

    Parameters
    ----------
    template : a leaderboard table whose design (families, sizes, tokens, instruct flags,
        observed cells) is kept; ``None`` for a synthetic design (:func:`synthetic_design`,
        about 6 LLMs per family).
    config : model configuration (number of skills, priors); default ``ModelConfig()``.
    benchmarks : benchmark columns (default: the template's known benchmarks, or the six
        v1 benchmarks for a synthetic design).
    seed : seeds both the synthetic design and the draw of parameters and scores.
    n_families : coarse families of a synthetic design.
    params : parameters to fix instead of drawing them from the prior (unbatched arrays,
        names of the model's sites).
    floors, n_items : benchmark metadata overrides, as in
        :func:`~sloth_bayes.data.validate_table`.
    **design_kwargs : passed to :func:`synthetic_design` (``missing_cells``...).

    Returns
    -------
    table : pandas.DataFrame
        Columns ``Model, Family, Family2, Instruct, #Params (B), Pretraining Data Size (T)``
        and one per benchmark; scores in [0, 1] (exact 0s and 1s possible), NaN where the
        design has no observation; unknown token counts stay NaN.
    truth : dict of numpy arrays
        The generating parameters, named and shaped as the posterior variables of a fit of
        ``table`` (without the chain and draw dims): ``slopes`` (covariate, skill),
        ``alpha`` (family, skill), ``loadings`` (benchmark, skill), ``difficulty``...
        ``tokens_latent`` holds the true standardised log tokens of the LLMs whose count
        the table hides.
    """
    config = config or ModelConfig()
    if template is None:
        design_kwargs = {"n_families": n_families, **design_kwargs}
    design = prepare_design(
        template,
        config,
        benchmarks=benchmarks,
        floors=floors,
        n_items=n_items,
        seed=seed,
        **design_kwargs,
    )
    draws = draw_prior(design, 1, seed=seed, params=params)
    table = design.fill(draws["y"][0])
    truth = {k: v[0] for k, v in draws.items() if k not in OBSERVED_SITES}
    return table, truth


# --- from a fit: the shipped simulated table ----------------------------------------------------
def simulate_from_fit(model, table: pd.DataFrame, *, seed: int = 0, draw: int | None = None):
    """Scores of ``table``'s design drawn from the posterior predictive of ``model``.

    One posterior draw ``s`` is picked (at random from ``seed`` unless ``draw`` is given); each
    LLM of ``table`` gets scores drawn from the model's likelihood at that draw's parameters
    (its family's efficiency, slope deviations and benchmark profile, its own skill residual
    and latent token count when the fit has them), in the cells ``table`` observes. Scores of
    benchmarks the fit read as rounded are rounded the same way. The design (names, families,
    instruct flags, sizes, token counts, missing cells) is copied.

    Parameters
    ----------
    model : a fitted :class:`~sloth_bayes.SlothBayes`, normally fitted to ``table``.
    table : the design: the leaderboard columns, scores used only for which cells exist.
    seed : seeds the choice of the draw and the observation noise.
    draw : index of the posterior draw (chains and draws flattened, chain-major).

    Returns
    -------
    simulated : pandas.DataFrame
        ``table``'s descriptive columns and the fit's benchmarks.
    record : dict
        JSON-ready: the draw (``chain``, ``draw``), ``parameters`` (every posterior variable
        at that draw: ``dims`` and ``values``), their ``coords``, the benchmarks, the model
        and sampler settings.
    """

    from .forecast import encoding_of

    model._check_fitted()
    post = model.idata_.posterior
    n_chain, n_draw = post.sizes["chain"], post.sizes["draw"]
    rng = np.random.default_rng(seed)
    s = int(rng.integers(n_chain * n_draw)) if draw is None else int(draw)
    if not 0 <= s < n_chain * n_draw:
        raise ValueError(f"draw must be in [0, {n_chain * n_draw}), got {draw}")
    chain, d = divmod(s, n_draw)

    design = table.reset_index(drop=True)
    pred = model.predictive_draws(design, seed=int(rng.integers(2**31)))
    y = pred["y"].isel(sample=s).transpose("model", "benchmark")
    enc = encoding_of(model.idata_)
    steps = dict(zip(enc.benchmarks, enc.score_step or [0.0] * len(enc.benchmarks)))
    out = design[list(META_COLUMNS)].copy()
    for b in enc.benchmarks:
        values = y.sel(benchmark=b).to_numpy().astype(float)
        if b in design:
            values = np.where(pd.to_numeric(design[b], errors="coerce").notna().to_numpy(), values, np.nan)
        step = float(steps.get(b) or 0.0)
        if step > 0:
            values = np.clip(np.round(values / step) * step, 0.0, 1.0).round(10)
        out[b] = values

    params, used = {}, set()
    for name, da in post.data_vars.items():
        v = da.isel(chain=chain, draw=d)
        params[name] = {"dims": list(v.dims), "values": np.asarray(v.values, float).tolist()}
        used.update(v.dims)
    coords = {k: np.asarray(post[k].values).tolist() for k in sorted(used) if k in post.coords}
    record = {
        "source": "posterior predictive of a fit to the embedded leaderboard table, at one draw",
        "seed": seed,
        "chain": int(chain),
        "draw": int(d),
        "benchmarks": list(enc.benchmarks),
        "config": model.config.to_dict(),
        "sampler": model.sampler.to_dict(),
        "coords": coords,
        "parameters": params,
    }
    return out, record


def plausibility(table: pd.DataFrame, benchmarks=None) -> pd.DataFrame:
    """Checks that a leaderboard looks like a real one, per benchmark: the median Spearman
    correlation of score with size within sub-families of three or more models
    (``size_rank_corr``: scores rise with size), and the mean score of LLMs under 1B and over
    30B parameters (small models sit near the floor on hard benchmarks)."""
    import warnings

    from scipy.stats import spearmanr

    from .data import SIZE, SUBFAMILY

    benchmarks = list(score_columns(table) if benchmarks is None else benchmarks)
    size = pd.to_numeric(table[SIZE])
    rows = []
    for b in benchmarks:
        score = pd.to_numeric(table[b], errors="coerce")
        corrs = []
        for _, idx in table.groupby(SUBFAMILY).groups.items():
            ok = score.loc[idx].notna() & size.loc[idx].notna()
            sub = idx[ok.to_numpy()]
            if len(sub) >= 3 and size.loc[sub].nunique() >= 3:
                with warnings.catch_warnings():  # a constant column (all 0): no correlation
                    warnings.simplefilter("ignore")
                    corrs.append(spearmanr(size.loc[sub], score.loc[sub]).statistic)
        rows.append(
            {
                "benchmark": b,
                "size_rank_corr": float(np.nanmedian(corrs)) if corrs else np.nan,
                "families": len(corrs),
                "mean_under_1b": float(score[size < 1].mean()),
                "mean_over_30b": float(score[size > 30].mean()),
            }
        )
    return pd.DataFrame(rows)


def write_simulated(table: pd.DataFrame, record: dict, out_dir) -> tuple[Path, Path]:
    """Write ``simulated_leaderboard.csv`` and ``simulated_parameters.json`` (atomically)."""
    from .utils import atomic_write

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path, json_path = out_dir / "simulated_leaderboard.csv", out_dir / "simulated_parameters.json"
    with atomic_write(csv_path) as fh:
        table.to_csv(fh, index=False)
    with atomic_write(json_path) as fh:
        json.dump(record, fh, indent=None, separators=(",", ":"))
        fh.write("\n")
    return csv_path, json_path
