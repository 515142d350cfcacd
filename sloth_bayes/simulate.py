"""Simulated leaderboards drawn from the model itself.

The simulator *is* the model: parameters are drawn from the prior of
:func:`~sloth_bayes.model.skills_model` (NumPyro ``Predictive`` with ``y=None``) and the
scores from its likelihood, on a design (families, sizes, tokens, which cells are observed)
taken from a template table or made up. So a fit of a simulated table can be checked
against the truth that generated it (parameter recovery, simulation-based calibration in
:mod:`sloth_bayes.sbc`).

>>> from sloth_bayes.simulate import simulate_table
>>> table, truth = simulate_table(seed=1)                          # doctest: +SKIP
>>> truth["loadings"].shape                                        # doctest: +SKIP
(6, 3)

``python -m sloth_bayes.simulate`` writes the demo files ``data/simulated_leaderboard.csv``
and ``data/simulated_parameters.json``.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .benchmarks import DEFAULT_BENCHMARKS, V1_BENCHMARKS
from .data import META_COLUMNS, TOKENS, score_columns, validate_table
from .model import Encoding, ModelConfig, ModelData, encode, make_encoding

__all__ = [
    "SimDesign",
    "draw_prior",
    "encode_table",
    "main",
    "prepare_design",
    "simulate_table",
    "synthetic_design",
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


# --- demo files -------------------------------------------------------------------------------
def parameters_json(truth: dict, design: SimDesign, *, seed, extra: dict | None = None) -> dict:
    """JSON-ready record of generating parameters: values with their dims and coords."""
    from .inference import site_dims

    dims = site_dims()
    coords = design.coords()
    params = {}
    for name, value in sorted(truth.items()):
        d = dims.get(name, [f"{name}_dim_{i}" for i in range(np.ndim(value))])
        params[name] = {"dims": d, "values": np.asarray(value, float).tolist()}
    used = {d for p in params.values() for d in p["dims"]}
    return {
        "seed": seed,
        "config": design.config.to_dict(),
        "benchmarks": design.benchmarks,
        "coords": {k: v for k, v in coords.items() if k in used},
        "parameters": params,
        **(extra or {}),
    }


def main(argv: list[str] | None = None) -> int:
    """Write ``data/simulated_leaderboard.csv`` and ``data/simulated_parameters.json``."""
    import argparse

    from .utils import atomic_write, package_data_path

    parser = argparse.ArgumentParser(
        prog="python -m sloth_bayes.simulate", description="Write the simulated demo leaderboard."
    )
    parser.add_argument("--out-dir", default=None, help="folder (default: the repository's data/)")
    parser.add_argument("--families", type=int, default=10, help="coarse families (~6 LLMs each)")
    # three skills: the demo table has more structure than the default two-skill fit assumes
    parser.add_argument("--skills", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    out_dir = Path(args.out_dir) if args.out_dir else package_data_path("benchmarks.csv").parent
    out_dir.mkdir(parents=True, exist_ok=True)
    config = ModelConfig(n_skills=args.skills)
    design_kwargs = dict(n_families=args.families)
    design = prepare_design(
        None, config, benchmarks=list(DEFAULT_BENCHMARKS), seed=args.seed, **design_kwargs
    )
    draws = draw_prior(design, 1, seed=args.seed)
    table = design.fill(draws["y"][0])
    truth = {k: v[0] for k, v in draws.items() if k not in OBSERVED_SITES}
    record = parameters_json(
        truth,
        design,
        seed=args.seed,
        extra={
            "design": {"n_families": args.families, "synthetic": True},
            "command": "python -m sloth_bayes.simulate",
            "note": (
                f"simulate_table(config=ModelConfig(n_skills={args.skills}), benchmarks="
                f"DEFAULT_BENCHMARKS, seed={args.seed}, n_families={args.families}) reproduces "
                "these files"
            ),
        },
    )
    csv_path, json_path = out_dir / "simulated_leaderboard.csv", out_dir / "simulated_parameters.json"
    with atomic_write(csv_path) as fh:
        table.to_csv(fh, index=False)
    with atomic_write(json_path) as fh:
        json.dump(record, fh, indent=1)
        fh.write("\n")
    print(
        f"{len(table)} simulated LLMs x {len(design.benchmarks)} benchmarks -> {csv_path}; "
        f"parameters -> {json_path}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
