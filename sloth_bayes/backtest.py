"""Backtests on held-out families: the protocol of ``EVALUATION.md``, and its variants.

For each group of sub-families of a benchmark set, the model is fitted without the group's
larger models and forecasts them; every observed cell (model x benchmark of the set) of the
forecast models is scored (:mod:`sloth_bayes.metrics`) beside two point baselines
(:mod:`sloth_bayes.baselines`) fitted on the same training table.

Protocols (:data:`PROTOCOLS`): ``lofo-1`` keeps in training the smallest model (by
``#Params (B)``, ties in file order) of each sub-family of the group, ``lofo-2`` its two
smallest, ``zero-shot`` none. Sets (:data:`SETS`): ``v1``, ``v2`` and ``all`` with the groups
of ``EVALUATION.md`` (:data:`GROUPS`), restricted to the families present in the table.
``future`` splits by release date instead (:func:`future_folds`): one fit on every
sub-family released before a cut-off plus the smallest model of each newer one, which
forecasts the newer sub-families' other models (a group per coarse family).

The Bayesian model is fitted on every benchmark column of the training table (it uses every
observed cell, the other set's too); a training table shared by several sets (the same group
definition) is fitted once: fits are cached by their sorted tuple of training model names.

By default every fold reuses one compiled sampler (:class:`CompiledFolds`): the full table
is encoded once, SVI and NUTS are compiled once per process, and a fold differs only in the
cell mask that leaves its held-out models' scores out of the likelihood; the fold's fit is
then restricted to its training table and forecasts the held-out models as new ones.
``compiled=False`` fits a fresh model per fold instead (any ``model_factory``).

>>> from functools import partial
>>> from sloth_bayes import SlothBayes
>>> res = run_backtest(table, sets=("v1", "v2"), protocol="lofo-1",
...                    model_factory=partial(SlothBayes, 3, chains=4), jobs=2)   # doctest: +SKIP
>>> res.summary.query("level == 'pooled'")                                        # doctest: +SKIP
>>> write_backtest(res, "backtest-out")                                          # doctest: +SKIP

Command line: ``sloth-bayes backtest DATA.csv --protocol lofo-1 --set v1,v2 --out DIR``
(``--protocol future [--cutoff 2024-01]``); ``sloth-bayes guidance DIR... --out FILE.md
--figure FILE.png`` gathers the over-/under-estimation evidence of several backtests.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import pickle
import sys
import time
import warnings
import zlib
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from .benchmarks import V1_BENCHMARKS, V2_BENCHMARKS
from .data import FAMILY, MODEL, SIZE, SUBFAMILY
from .metrics import calibrated_hits, calibrated_range, crps, group_bootstrap, pit, summarise_cells
from .utils import atomic_path, atomic_write

__all__ = [
    "GROUPS",
    "PROTOCOLS",
    "SETS",
    "BacktestResult",
    "CompiledFolds",
    "Fold",
    "compiled_folds",
    "folds",
    "future_folds",
    "register_cli",
    "run_backtest",
    "write_backtest",
]

#: Protocol -> how many of the smallest models of each held-out sub-family are kept in
#: training (``future``: of each sub-family released on or after the cut-off).
PROTOCOLS: dict[str, int] = {"lofo-1": 1, "lofo-2": 2, "zero-shot": 0, "future": 1}
#: Default cut-off of the ``future`` protocol (first-release month, ``YYYY-MM``).
FUTURE_CUTOFF = "2024-01"

#: Benchmark set -> its benchmarks.
SETS: dict[str, tuple[str, ...]] = {
    "v1": V1_BENCHMARKS,
    "v2": V2_BENCHMARKS,
    "all": V1_BENCHMARKS + V2_BENCHMARKS,
}


def _groups(*groups: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    return {" + ".join(g): tuple(g) for g in groups}


_PYTHIA = ("pythia", "dolly-v2")
_GEMMA = ("gemma", "gemma-it", "sauerkrautlm-gemma")
_YI = ("yi-1.5", "yi-1.5-chat", "dolphin-2.9.1-yi-1.5")
#: Set -> test groups (name -> sub-families), as in ``EVALUATION.md``.
GROUPS: dict[str, dict[str, tuple[str, ...]]] = {
    "v1": _groups(
        ("bloom",), ("codegen-nl",), ("codellama",), ("deepseek-coder-base",), _PYTHIA,
        ("falcon",), _GEMMA, ("gpt-j-neo-neox",), ("internlm2",),
        ("mpt", "mpt-chat", "mpt-instruct"), ("olmo",), ("opt",), ("rwkv-4-pile",),
        ("starcoder2",), ("stablelm-base-alpha",), ("xglm",), _YI,
    ),
    "v2": _groups(
        ("bloom",), _PYTHIA, ("falcon", "falcon-instruct"), ("gpt-j-neo-neox",), ("olmo",),
        ("opt",), ("starcoder2",), _YI,
    ),
    "all": _groups(
        ("bloom",), _PYTHIA, ("falcon",), _GEMMA, ("gpt-j-neo-neox",), ("olmo",), ("opt",),
        ("starcoder2",), _YI,
    ),
}

#: Forecast columns copied into the cell table (those present).
_FORECAST_KEEP = (
    "mean", "median", "lower_50", "upper_50", "lower_90", "upper_90", "mean_noiseless",
    "point", "p_overestimate", "family_kind", "point_basis", "family", "family2", "instruct",
    "params_b", "tokens_t",
)
#: Plot functions of :mod:`sloth_bayes.plots` drawn by :func:`write_backtest`.
#: Replicates of the calibrated reference of each fold (``BacktestResult.reference``).
N_REFERENCE = 400
FIGURES = ("calibration_curve", "pit_histogram", "error_vs_distance", "benchmark_errors")


class Fold(NamedTuple):
    """One held-out group: ``(group, train, test)`` tables (rows of the input, file order)."""

    group: str
    train: pd.DataFrame
    test: pd.DataFrame


def _resolve_groups(set_name: str, groups) -> dict[str, tuple[str, ...]]:
    if set_name not in SETS:
        raise ValueError(f"unknown benchmark set {set_name!r}: choose from {', '.join(SETS)}")
    if groups is None:
        return dict(GROUPS[set_name])
    if isinstance(groups, Mapping):
        return {str(k): tuple(v) for k, v in groups.items()}
    wanted = [groups] if isinstance(groups, str) else list(groups)
    out = {}
    for name, subs in GROUPS[set_name].items():
        if any(w == name or w in subs for w in wanted):
            out[name] = subs
    return out


def folds(table: pd.DataFrame, set_name: str, protocol: str = "lofo-1", *, groups=None,
          cutoff: str = FUTURE_CUTOFF, release=None) -> list[Fold]:
    """Training and test tables of each group of a benchmark set.

    Parameters
    ----------
    table : the full wide table (one row per LLM).
    set_name : ``"v1"``, ``"v2"`` or ``"all"`` (:data:`SETS`).
    protocol : ``"lofo-1"``, ``"lofo-2"``, ``"zero-shot"`` or ``"future"``
        (:data:`PROTOCOLS`; ``future``: :func:`future_folds` with ``cutoff`` and ``release``).
    groups : restrict to some groups -- names of :data:`GROUPS` or sub-families in them --
        or a mapping ``{name: sub-families}`` of custom groups (used for every set).

    Returns
    -------
    list of :class:`Fold` ``(group, train, test)``: ``train`` = every row outside the group
    plus, for each sub-family of the group, its ``n`` smallest models by ``#Params (B)``
    (stable sort: ties in file order; ``n`` from the protocol); ``test`` = the group's other
    models. Sub-families absent from the table are ignored; a group with none present, or
    whose test models have no observed score on the set's benchmarks, is left out.
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}: choose from {', '.join(PROTOCOLS)}")
    if protocol == "future":
        return future_folds(table, set_name, cutoff=cutoff, release=release, groups=groups)
    keep = PROTOCOLS[protocol]
    group_defs = _resolve_groups(set_name, groups)
    table = table.reset_index(drop=True)
    benches = [b for b in SETS[set_name] if b in table.columns]
    sub = table[SUBFAMILY].astype(str)
    size = pd.to_numeric(table[SIZE], errors="coerce")
    out = []
    for name, subs in group_defs.items():
        in_group = sub.isin(subs)
        if not in_group.any():
            continue
        kept = []
        for s in subs:
            rows = size[sub == s].sort_values(kind="stable")
            kept.extend(rows.index[:keep])
        test_mask = in_group & ~table.index.isin(kept)
        test = table[test_mask]
        if test.empty or not test[benches].notna().to_numpy().any():
            continue
        out.append(Fold(name, table[~test_mask], test))
    return out


def _month(value: str) -> str:
    month = pd.to_datetime(str(value), errors="coerce", format="mixed")
    if pd.isna(month):
        raise ValueError(f"cut-off {value!r} is not a month (YYYY-MM)")
    return month.strftime("%Y-%m")


def future_folds(table: pd.DataFrame, set_name: str, *, cutoff: str = FUTURE_CUTOFF, release=None,
                 groups=None) -> list[Fold]:
    """The ``future`` protocol: forecast sub-families released on or after ``cutoff`` from
    everything older.

    One training table for every fold (and every set: a single fit): every row of the
    sub-families released before ``cutoff``, plus the smallest model (by ``#Params (B)``,
    ties in file order) of each sub-family released on or after it. A fold per coarse family
    (``Family``) of the newer sub-families -- its cells share the family's efficiency, so it
    is the unit that resampling (:func:`~sloth_bayes.metrics.group_bootstrap`) treats as
    independent -- named after its newer sub-families; its test table holds their other
    models.

    Release months: ``release`` (a mapping ``Family2 -> date`` or a CSV path with columns
    ``Family2, release``), else the table's ``Release`` column, else the release table that
    ships with the package (:func:`~sloth_bayes.releases.release_months`). A sub-family
    without a date is *unknown*, not old: it stays in training as it is (all its models)
    and is never forecast.

    Parameters
    ----------
    table : the full wide table. set_name : :data:`SETS` key (test models need an observed
        score of the set). cutoff : ``"YYYY-MM"``. groups : only these folds (names or
        newer sub-families; a mapping is refused: the folds follow the release dates).
    """
    from .releases import release_months

    if set_name not in SETS:
        raise ValueError(f"unknown benchmark set {set_name!r}: choose from {', '.join(SETS)}")
    if isinstance(groups, Mapping):
        raise ValueError("the future protocol groups newer sub-families by coarse family: "
                         "give group or sub-family names, not a mapping")
    cut = _month(cutoff)
    table = table.reset_index(drop=True)
    sub = table[SUBFAMILY].astype(str)
    month = sub.map(release_months(table, release))
    newer = month.notna() & (month.fillna("") >= cut)  # "YYYY-MM" strings sort as months
    size = pd.to_numeric(table[SIZE], errors="coerce")
    kept = [size[sub == s].sort_values(kind="stable").index[0] for s in pd.unique(sub[newer])]
    test_mask = newer & ~table.index.isin(kept)
    train = table[~test_mask]
    benches = [b for b in SETS[set_name] if b in table.columns]
    wanted = None if groups is None else ({groups} if isinstance(groups, str) else set(groups))
    out = []
    coarse = table[FAMILY].astype(str)
    for fam in pd.unique(coarse[newer]):
        subs = tuple(pd.unique(sub[newer & (coarse == fam)]))
        name = " + ".join(subs)
        if wanted is not None and not (name in wanted or wanted & set(subs)):
            continue
        test = table[test_mask & (coarse == fam)]
        if test.empty or not test[benches].notna().to_numpy().any():
            continue
        out.append(Fold(name, train, test))
    return out


@dataclass
class BacktestResult:
    """What :func:`run_backtest` returns.

    cells : one row per scored cell: ``protocol, set, group, model, benchmark, truth``, the
        forecast columns (``mean, median, lower_50 ... point, p_overestimate, family_kind,
        point_basis``, family metadata), ``pit`` (randomised), ``crps``, ``abs_error`` (of
        the median), ``distance`` (log10 of the model's size over the largest training size
        of its sub-family; NaN when the sub-family has no training model), ``n_observed``
        (training models of its sub-family), the baselines' ``pred_point_skills`` and
        ``pred_flops_sigmoid``, and ``release`` (the sub-family's first-release month, when
        known: :func:`~sloth_bayes.releases.release_months`).
    summary : :func:`~sloth_bayes.metrics.summarise_cells` of ``cells`` (per set: pooled,
        group mean, per benchmark, per group; baseline MAEs beside the Bayesian one).
    fits : one row per fit: groups/sets served, sizes, seconds (total, SVI, NUTS; with
        ``compiled``, ``compile_seconds`` is the kernels' build, paid by a process's first
        fold only, apart from the SVI and NUTS run times), divergences, the largest R-hat
        and the spread of the chains' mean log densities.
    settings : protocol, sets, seed, model and sampler settings.
    reference : what a calibrated forecast's coverage of the same cells would be: per set,
        group and replicate (:data:`N_REFERENCE`), the number of scored cells ``n`` and how
        many of them a truth drawn jointly from the fold's own predictive falls in, for the
        50% and 90% intervals (``hits_50``, ``hits_90``; :func:`~sloth_bayes.metrics.
        calibrated_hits`). The pooled coverage's spread under calibration:
        :func:`~sloth_bayes.metrics.calibrated_range`.
    """

    cells: pd.DataFrame
    summary: pd.DataFrame
    fits: pd.DataFrame
    settings: dict = field(default_factory=dict)
    reference: pd.DataFrame = field(default_factory=pd.DataFrame)


def _default_factory():
    from .estimator import SlothBayes

    return SlothBayes()


def _fit_diagnostics(model) -> dict:
    """Cheap convergence numbers of a fit (NaN where unavailable): divergent transitions,
    the largest R-hat over the variables the convergence check reads
    (:func:`diagnostics.checked_parameters`: not the sign-free ``*_unfolded`` sites, whose
    chains may sit at opposite signs of the same fit) except the standard-normal ``z_*``
    offsets, and the spread of the chains' mean log densities (chains more than a few units
    apart sit in different solutions)."""
    out = {"divergences": np.nan, "rhat_max": np.nan, "lp_chain_spread": np.nan}
    idata = getattr(model, "idata_", None)
    if idata is None:  # not a SlothBayes (a stand-in, a custom model)
        return out
    try:
        stats = idata["sample_stats"] if "sample_stats" in idata.children else None
        if stats is not None and "diverging" in stats:
            out["divergences"] = int(stats["diverging"].to_numpy().sum())
        if stats is not None and "lp" in stats:
            per_chain = stats["lp"].to_numpy().mean(axis=1)  # (chain,)
            out["lp_chain_spread"] = float(per_chain.max() - per_chain.min())
        from .diagnostics import checked_parameters

        post, _ = checked_parameters(idata)
        if post.sizes.get("chain", 1) > 1:
            import arviz as az

            names = [v for v in post.data_vars if not v.startswith("z_")]
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")  # constant entries (fixed loadings) give NaN
                rh = az.rhat(idata, var_names=names)
            ds = rh.to_dataset() if hasattr(rh, "to_dataset") else rh
            vals = [np.asarray(ds[v], dtype=float) for v in ds.data_vars]
            vals = np.concatenate([v.ravel() for v in vals]) if vals else np.array([])
            if np.isfinite(vals).any():
                out["rhat_max"] = float(np.nanmax(vals))
    except Exception as exc:  # diagnostics must never break a backtest
        warnings.warn(f"fit diagnostics unavailable: {exc}", stacklevel=2)
    return out


def _distance(train: pd.DataFrame, test: pd.DataFrame) -> pd.Series:
    """log10(size / largest training size of the same sub-family), NaN without one."""
    largest = pd.to_numeric(train[SIZE], errors="coerce").groupby(train[SUBFAMILY].astype(str)).max()
    ref = test[SUBFAMILY].astype(str).map(largest)
    return pd.Series(
        np.log10(pd.to_numeric(test[SIZE], errors="coerce").to_numpy(float) / ref.to_numpy(float)),
        index=test[MODEL].astype(str).to_numpy(),
    )


# -- the compiled fold path ----------------------------------------------------------------------
class CompiledFolds:
    """Every fold of a backtest from one encoding of the full table and one compiled sampler.

    The full table (every row, the held-out models included) is encoded once and SVI + NUTS
    are compiled once (:class:`~sloth_bayes.sbc.CompiledFitter`); a fold only changes the
    cell mask, an argument of the compiled kernels: the cells of the models outside the
    fold's training table are left out of the likelihood. What the fit then says of a
    held-out LLM (its residual, its missing token count) or of a held-out sub-family or
    family (zero-shot) is its prior given the rest, as for a new LLM in a forecast; the fold's
    model keeps only what the training table informs (:meth:`fit` restricts the posterior to
    the training LLMs and the families they belong to) and forecasts the held-out models as
    new ones, exactly as a model fitted on the training table alone would.

    Differences from ``SlothBayes().fit(train)``, by design:

    * the covariate standardisation (and the per-family prior of a missing token count)
      comes from the full table: sizes and token counts are inputs, not outcomes;
    * the sum-to-zero centring of the per-LLM / per-family offsets in the model runs over
      all rows, the held-out ones included (prior-only offsets): the training offsets then
      sum to minus the held-out ones, a slightly wider prior of their mean;
    * chains run one after the other in this process (``chain_method`` is not used), and
      the fit has no ``log_likelihood`` group.

    Parameters
    ----------
    table : the full table of the backtest (folds are subsets of its rows).
    config, sampler : model and sampler settings (as a ``SlothBayes``'s).
    benchmarks, floors, n_items : as in :func:`~sloth_bayes.data.validate_table`.
    """

    def __init__(self, table: pd.DataFrame, config=None, sampler=None, *, benchmarks=None,
                 floors=None, n_items=None):
        from .inference import SamplerConfig
        from .model import ModelConfig
        from .sbc import CompiledFitter

        t0 = time.perf_counter()
        config = config or ModelConfig()
        sampler = sampler or SamplerConfig()
        self.fitter = CompiledFitter.from_table(
            table, config, sampler, benchmarks=benchmarks, floors=floors, n_items=n_items
        )
        self.design = self.fitter.design
        self.config, self.sampler = config, sampler
        #: Seconds spent encoding the table and tracing the model (once), reported with the
        #: compilation of the first fold.
        self.setup_seconds = time.perf_counter() - t0
        self._setup_unreported = self.setup_seconds

    def mask(self, train_models) -> np.ndarray:
        """(cells,) bool: the observed cells of the full table that belong to ``train_models``."""
        return self._rows(train_models)[np.asarray(self.design.data.obs_row)]

    def _rows(self, train_models) -> np.ndarray:
        llms = list(self.design.encoding.llms)
        names = {str(m) for m in train_models}
        unknown = names - set(llms)
        if unknown:
            raise ValueError(f"training models not in the backtest's table: {sorted(unknown)[:5]}")
        return np.isin(np.asarray(llms, dtype=object), list(names))

    def fit(self, train_models, *, seed: int = 0, y=None):
        """Fit the fold whose training table has the LLMs ``train_models`` (names).

        Returns a fitted :class:`~sloth_bayes.SlothBayes` (its ``idata_`` as a fit of the
        training table: posterior, sample_stats, observed_data, constant_data; ``fit_info_``
        with ``compile_seconds`` apart from ``svi_seconds`` and ``nuts_seconds``).
        ``y`` replaces the full table's scores (tests: held-out cells must not matter).
        """
        in_train = self._rows(train_models)
        draws, stats = self.fitter.fit(
            y, seed=seed, mask=in_train[np.asarray(self.design.data.obs_row)]
        )
        return self.as_model(draws, stats, in_train, seed)

    def as_model(self, draws: dict, stats: dict, in_train: np.ndarray, seed):
        """A fitted ``SlothBayes`` of the training rows ``in_train`` (bool per LLM of the full
        table) from draws of the masked full model."""
        import jax

        from .estimator import SlothBayes
        from .inference import _tree_layout, draws_to_datatree
        from .model import Encoding, deviation_pivots, encode

        enc, data = self.design.encoding, self.design.data
        sub_all, coarse_all = np.asarray(data.sub), np.asarray(data.coarse)
        sub_keep = np.flatnonzero(np.isin(np.arange(len(enc.subfamilies)), sub_all[in_train]))
        coarse_keep = np.flatnonzero(np.isin(np.arange(len(enc.coarse)), coarse_all[in_train]))
        coarse = [enc.coarse[i] for i in coarse_keep]
        fold_enc = Encoding(
            **{
                **enc.to_dict(),
                "llms": [m for m, keep in zip(enc.llms, in_train) if keep],
                "subfamilies": [enc.subfamilies[i] for i in sub_keep],
                "coarse": coarse,
                "sub_coarse": [coarse.index(enc.coarse[enc.sub_coarse[i]]) for i in sub_keep],
                "coarse_tokens_loc": {c: v for c, v in enc.coarse_tokens_loc.items() if c in coarse},
                "coarse_tokens_scale": {c: v for c, v in enc.coarse_tokens_scale.items() if c in coarse},
            }
        )
        # the slope deviations' pivots of this fold, as the masked model computed them
        fold_data_masked = data._replace(cell_mask=in_train[np.asarray(data.obs_row)])
        pivots, low, high = deviation_pivots(fold_data_masked)
        fold_enc.coarse_x_centre = {c: [float(v) for v in pivots[i]] for i, c in zip(coarse_keep, coarse)}
        fold_enc.coarse_x_low = {c: [float(v) for v in low[i]] for i, c in zip(coarse_keep, coarse)}
        fold_enc.coarse_x_high = {c: [float(v) for v in high[i]] for i, c in zip(coarse_keep, coarse)}
        train = self.design.table[in_train]
        fold_data = encode(train, fold_enc, self.config.n_skills)
        # Which entries of each dim the training table informs: a dim indexed by LLMs keeps
        # the training LLMs, one by sub-families (coarse families) those with a training
        # LLM; recognised by name, else by its coordinates (e.g. family x benchmark profiles).
        coords, dims, _ = _tree_layout(data, enc, self.config)
        by_list = (
            (list(enc.llms), np.flatnonzero(in_train)),
            (list(enc.subfamilies), sub_keep),
            (list(enc.coarse), coarse_keep),
        )
        train_missing = in_train[np.asarray(data.tokens_missing)]
        keep = {
            "llm": np.flatnonzero(in_train),
            "family": sub_keep,
            "coarse_family": coarse_keep,
            "llm_missing_tokens": np.flatnonzero(train_missing),
            # shared counts of the training LLMs (in order: the fold's own groups)
            "tokens_group": np.unique(np.asarray(data.tokens_group)[train_missing]),
        }
        for dim, values in coords.items():
            if dim not in keep and dim != "cell":
                for names, idx in by_list:
                    if list(values) == names:
                        keep[dim] = idx
                        break
        post = {}
        for name, arr in draws.items():
            for axis, dim in enumerate(dims.get(name, [])):
                if dim in keep:
                    arr = np.take(arr, keep[dim], axis=2 + axis)
            post[name] = arr
        idata = draws_to_datatree(post, stats, fold_data, fold_enc, self.config,
                                  max_tree_depth=self.sampler.max_tree_depth)
        info = {
            "svi_seconds": float(stats["svi_seconds"]),
            "nuts_seconds": float(stats["nuts_seconds"]),
            # the kernels built by this fit, plus the one-time setup if not reported yet
            "compile_seconds": float(stats["compile_seconds"]) + self._setup_unreported,
            "svi_losses": [float(v) for v in np.ravel(stats["svi_losses"])],
            "chain_method_used": "sequential",
            "jax_backend": jax.default_backend(),
            "compiled": True,
            "cells_in_likelihood": int(in_train[np.asarray(data.obs_row)].sum()),
            "cells_of_full_table": int(len(data.y)),
            "warmup_divergences": int(np.sum(stats["warmup_divergences"])),
        }
        self._setup_unreported = 0.0
        model = SlothBayes(config=self.config, sampler=self.sampler)
        return model._set_fit(idata, fold_enc, info, seed)


#: Compiled fold fitters of this process (one: a worker of ``jobs > 1`` compiles once).
_COMPILED: dict[str, CompiledFolds] = {}


def _compiled_key(table: pd.DataFrame, config, sampler) -> str:
    h = hashlib.sha1(pd.util.hash_pandas_object(table, index=True).to_numpy().tobytes())
    h.update(json.dumps([config.to_dict(), sampler.to_dict()], sort_keys=True, default=str).encode())
    h.update(",".join(map(str, table.columns)).encode())
    return h.hexdigest()


def compiled_folds(table: pd.DataFrame, config, sampler) -> CompiledFolds:
    """The :class:`CompiledFolds` of ``table`` and these settings, built once per process
    (the last one is kept: another backtest of the same table and settings -- other sets,
    another protocol, another seed -- reuses its compilation)."""
    key = _compiled_key(table, config, sampler)
    hit = _COMPILED.get(key)
    if hit is None:
        _COMPILED.clear()
        hit = _COMPILED[key] = CompiledFolds(table, config, sampler)
    return hit


def _uses_compiled(probe) -> bool:
    """A plain SlothBayes (its ``fit`` not overridden): the compiled path can stand in for it."""
    from .estimator import SlothBayes

    return isinstance(probe, SlothBayes) and type(probe).fit is SlothBayes.fit


def _run_job(job: dict) -> tuple[pd.DataFrame, dict, pd.DataFrame]:
    """Fit one training table, forecast its test models, score them for each (set, group);
    also the calibrated reference of the coverage of those cells (:func:`calibrated_hits`)."""
    from .forecast import summarise

    t0 = time.perf_counter()
    train, test, seed = job["train"], job["test"], job["seed"]
    spec = job.get("compiled")
    if spec is not None:  # one encoding of the full table, one compiled sampler, a cell mask
        fitter = compiled_folds(spec["table"], spec["config"], spec["sampler"])
        model = fitter.fit(train[MODEL].astype(str), seed=seed)
    else:
        model = job["model_factory"]()
        model.fit(train, seed=seed, progress_bar=False)
    _ensure_point(model, train, seed)
    t_fit = time.perf_counter() - t0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # zero-shot: new families are the point
        draws = model.predictive_draws(test, seed=seed)
    fc = summarise(draws, test)
    y = draws["y"].to_numpy()  # (S, Q, J)
    models = [str(m) for m in draws["model"].to_numpy()]
    fit_benches = [str(b) for b in draws["benchmark"].to_numpy()]
    truth = test.set_index(test[MODEL].astype(str))
    truth_mat = np.full(y.shape[1:], np.nan)
    for j, b in enumerate(fit_benches):
        if b in truth.columns:
            truth_mat[:, j] = pd.to_numeric(truth.loc[models, b], errors="coerce").to_numpy(float)
    rng = np.random.default_rng([int(seed), job["hash"]])
    pit_mat = pit(y, truth_mat, seed=rng)
    crps_mat = crps(y, truth_mat)
    scores = pd.DataFrame(
        {
            "model": np.repeat(models, len(fit_benches)),
            "benchmark": np.tile(fit_benches, len(models)),
            "pit": pit_mat.ravel(),
            "crps": crps_mat.ravel(),
        }
    )
    keep = ["model", "benchmark"] + [c for c in _FORECAST_KEEP if c in fc.columns]
    fc = fc[keep].merge(scores, on=["model", "benchmark"], how="left")
    dist = _distance(train, test)
    n_seen = test[SUBFAMILY].astype(str).map(train[SUBFAMILY].astype(str).value_counts()).fillna(0)
    n_seen.index = test[MODEL].astype(str).to_numpy()
    parts, refs = [], []
    t_base = 0.0
    all_test = test
    for set_name, group in job["targets"]:
        mine = job.get("target_models", {}).get((set_name, group))
        test = all_test if mine is None else all_test[all_test[MODEL].astype(str).isin(mine)]
        benches = [b for b in SETS[set_name] if b in test.columns]
        long = test.melt(id_vars=[MODEL], value_vars=benches, var_name="benchmark", value_name="truth")
        long = long.rename(columns={MODEL: "model"})
        long["model"] = long["model"].astype(str)
        long["truth"] = pd.to_numeric(long["truth"], errors="coerce")
        long = long[long["truth"].notna()]
        cells = long.merge(fc, on=["model", "benchmark"], how="left")
        cells.insert(0, "group", group)
        cells.insert(0, "set", set_name)
        cells["abs_error"] = (cells["median"] - cells["truth"]).abs()
        cells["distance"] = cells["model"].map(dist).to_numpy(float)
        cells["n_observed"] = cells["model"].map(n_seen).to_numpy(int)
        # what a calibrated forecast's coverage of these cells would be: joint pseudo-truths
        qi = pd.Index(models).get_indexer(cells["model"])
        ji = pd.Index(fit_benches).get_indexer(cells["benchmark"])
        hits = calibrated_hits(y[:, qi, ji], n_rep=N_REFERENCE, seed=rng)
        refs.append(pd.DataFrame({"set": set_name, "group": group, "replicate": np.arange(N_REFERENCE),
                                  "n": len(cells), "hits_50": hits[0.5], "hits_90": hits[0.9]}))
        if job["baselines"]:
            tb = time.perf_counter()
            cells = _add_baselines(cells, train, test, benches, job["baseline_skills"], seed)
            t_base += time.perf_counter() - tb
        parts.append(cells)
    info = getattr(model, "fit_info_", None) or {}
    timing = {
        "groups": "; ".join(sorted({g for _, g in job["targets"]})),
        "sets": ",".join(s for s, _ in job["targets"]),
        "n_train": len(train),
        "n_test": len(all_test),
        "n_train_cells": int(train[[b for b in fit_benches if b in train.columns]].notna().to_numpy().sum()),
        "seconds": time.perf_counter() - t0,
        "fit_seconds": t_fit,
        "compiled": spec is not None,
        "compile_seconds": info.get("compile_seconds", np.nan),
        "svi_seconds": info.get("svi_seconds", np.nan),
        "nuts_seconds": info.get("nuts_seconds", np.nan),
        "baseline_seconds": t_base,
        "chain_method": info.get("chain_method_used", ""),
        **_fit_diagnostics(model),
    }
    return pd.concat(parts, ignore_index=True), timing, pd.concat(refs, ignore_index=True)


def _ensure_point(model, train: pd.DataFrame, seed) -> None:
    """Give a fold's fit its reference point law (a fit from the compiled path has none)."""
    if hasattr(model, "fit_point") and getattr(model, "point_law_", None) is None:
        model.fit_point(train, seed=seed)


def _add_baselines(cells, train, test, benches, k, seed) -> pd.DataFrame:
    from .baselines import FlopsSigmoid, PointSkillsLaw

    for col, base in (
        ("pred_point_skills", PointSkillsLaw(n_skills=k, seed=seed)),
        ("pred_flops_sigmoid", FlopsSigmoid()),
    ):
        try:
            pred = base.fit(train, benches).predict(test).rename(columns={"prediction": col})
            cells = cells.merge(pred, on=["model", "benchmark"], how="left")
        except Exception as exc:  # a baseline failing must not lose the Bayesian scores
            warnings.warn(f"baseline {type(base).__name__} failed: {exc}", stacklevel=2)
            cells[col] = np.nan
    return cells


def _init_worker(devices: int) -> None:
    """Worker start (spawn): give JAX ``devices`` CPU devices before it starts."""
    import numpyro

    numpyro.set_host_device_count(max(1, devices))


def run_backtest(
    table: pd.DataFrame,
    *,
    sets: Sequence[str] | str = ("v1",),
    protocol: str = "lofo-1",
    model_factory: Callable[[], object] | None = None,
    seed: int = 0,
    jobs: int = 1,
    baselines: bool = True,
    baseline_skills: int = 2,
    groups=None,
    verbose: bool = True,
    compiled: bool | None = None,
    cutoff: str = FUTURE_CUTOFF,
    release=None,
) -> BacktestResult:
    """Run a backtest: fit without each group's held-out models, forecast and score them.

    Parameters
    ----------
    table : full wide table (e.g. ``pd.read_csv(leaderboard_v2.csv)``).
    sets : benchmark set(s) to score (:data:`SETS`); a comma list is accepted.
    protocol : :data:`PROTOCOLS` key.
    model_factory : callable returning a fresh unfitted :class:`~sloth_bayes.SlothBayes`
        (default: ``SlothBayes()`` with its default settings). With ``jobs > 1`` it must
        be picklable: a module-level function or ``functools.partial(SlothBayes, ...)``,
        not a lambda.
    seed : seed of every fit, of the predictive draws and of the randomised PIT.
    jobs : fits run at once. ``> 1``: worker processes (``spawn``), each with
        ``cpu_count // jobs`` JAX CPU devices, so the chains of a fit run in parallel when
        the worker has a core per chain and sequentially otherwise (one fit per core is the
        most efficient use of few cores: NUTS chains are short and compilation is serial).
        With ``compiled``, each worker compiles once and runs its folds' chains one after
        the other. ``1``: in this process, with whatever devices JAX already has.
    baselines : also fit :class:`~sloth_bayes.baselines.PointSkillsLaw` (``baseline_skills``
        skills) and :class:`~sloth_bayes.baselines.FlopsSigmoid` on each training table
        (on the set's benchmarks) and add their predictions.
    groups : restrict the groups (see :func:`folds`).
    cutoff, release : the ``future`` protocol's cut-off month and release dates
        (:func:`future_folds`; the shipped release table by default).
    verbose : print a line per finished fit to stderr.
    compiled : fit the folds with one compiled sampler (:class:`CompiledFolds`: the full
        table encoded once, SVI + NUTS compiled once per process, each fold a cell mask that
        leaves its held-out models out of the likelihood; chains one after the other in the
        process). ``None`` (default): when ``model_factory`` gives a plain
        :class:`~sloth_bayes.SlothBayes` (its config and sampler settings are used).
        ``False``: a fresh model from the factory per fold, ``fit(train)`` (any model).

    Returns
    -------
    :class:`BacktestResult`.
    """
    sets = [s.strip() for s in (sets.split(",") if isinstance(sets, str) else sets) if s.strip()]
    if not sets:
        raise ValueError("no benchmark set given")
    model_factory = model_factory or _default_factory
    probe = model_factory()
    if compiled is None:
        compiled = _uses_compiled(probe)
    elif compiled and not _uses_compiled(probe):
        raise TypeError(
            f"compiled=True needs a model_factory that gives a SlothBayes, got {type(probe).__name__}"
        )
    spec = None
    if compiled:
        spec = {"table": table.reset_index(drop=True), "config": probe.config, "sampler": probe.sampler}
    jobs_by_key: dict[tuple, dict] = {}
    fold_order: dict[tuple[str, str], int] = {}
    for set_name in sets:
        fs = folds(table, set_name, protocol, groups=groups, cutoff=cutoff, release=release)
        for fold in fs:
            fold_order[(set_name, fold.group)] = len(fold_order)
            key = tuple(sorted(fold.train[MODEL].astype(str)))
            if key not in jobs_by_key:
                jobs_by_key[key] = {
                    "train": fold.train,
                    "test": fold.test,
                    "targets": [],
                    "target_models": {},
                    "seed": seed,
                    "model_factory": model_factory,
                    "compiled": spec,
                    "baselines": baselines,
                    "baseline_skills": baseline_skills,
                    "hash": zlib.crc32("\n".join(key).encode()),
                }
            job = jobs_by_key[key]
            job["targets"].append((set_name, fold.group))
            # folds sharing a training table (``future``: all of them) share its fit and
            # forecast; each scores its own test models
            job["target_models"][(set_name, fold.group)] = set(fold.test[MODEL].astype(str))
            if not fold.test.index.isin(job["test"].index).all():
                both = pd.concat([job["test"], fold.test])
                job["test"] = both[~both.index.duplicated()].sort_index()
    if not jobs_by_key:
        raise ValueError(
            f"no group of sets {sets} has a held-out model with an observed score in this table"
        )
    todo = list(jobs_by_key.values())
    results: list[tuple[pd.DataFrame, dict, pd.DataFrame] | None] = [None] * len(todo)
    t0 = time.perf_counter()

    def report(i, timing):
        if verbose:
            print(
                f"[backtest] fit {sum(r is not None for r in results)}/{len(todo)} "
                f"({timing['groups']}; {timing['sets']}): {timing['seconds']:.0f} s, "
                f"{time.perf_counter() - t0:.0f} s so far",
                file=sys.stderr,
                flush=True,
            )

    if jobs <= 1 or len(todo) == 1:
        for i, job in enumerate(todo):
            results[i] = _run_job(job)
            report(i, results[i][1])
    else:
        try:
            pickle.dumps(model_factory)
        except Exception as exc:
            raise TypeError(
                "with jobs > 1 the model_factory must be picklable (a module-level function or "
                f"functools.partial(SlothBayes, ...), not a lambda): {exc}"
            ) from exc
        n = min(jobs, len(todo))
        devices = max(1, (os.cpu_count() or 1) // n)
        with ProcessPoolExecutor(
            max_workers=n, mp_context=get_context("spawn"), initializer=_init_worker,
            initargs=(devices,),
        ) as pool:
            futures = {pool.submit(_run_job, job): i for i, job in enumerate(todo)}
            for fut in as_completed(futures):
                i = futures[fut]
                results[i] = fut.result()
                report(i, results[i][1])
    cells = pd.concat([r[0] for r in results], ignore_index=True)
    rank = [fold_order[k] for k in zip(cells["set"], cells["group"])]
    cells = cells.iloc[np.argsort(rank, kind="stable")].reset_index(drop=True)
    cells.insert(0, "protocol", protocol)
    if "family2" in cells:  # the scenario of each cell for the guidance table
        from .releases import release_months

        cells["release"] = cells["family2"].astype(str).map(release_months(table, release))
    fits = pd.DataFrame([r[1] for r in results])
    reference = pd.concat([r[2] for r in results], ignore_index=True)
    settings = {"protocol": protocol, "sets": sets, "seed": seed, "jobs": jobs,
                "compiled": bool(compiled), "wall_seconds": time.perf_counter() - t0}
    if protocol == "future":
        settings["cutoff"] = _month(cutoff)
    try:
        settings["model"] = probe.config.to_dict()
        settings["sampler"] = probe.sampler.to_dict()
    except Exception:  # a custom factory need not expose these
        pass
    return BacktestResult(cells=cells, summary=summarise_cells(cells), fits=fits, settings=settings,
                          reference=reference)


# -- output --------------------------------------------------------------------------------


def _markdown(df: pd.DataFrame, digits: int = 3) -> str:
    """A pipe table (no dependency on ``tabulate``)."""

    def fmt(v):
        if isinstance(v, (float, np.floating)):
            return "" if np.isnan(v) else f"{v:.{digits}f}"
        return str(v)

    lines = ["| " + " | ".join(map(str, df.columns)) + " |",
             "|" + "|".join("---" for _ in df.columns) + "|"]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


_MD_COLUMNS = (
    "key", "n", "mae_points", "mae_point_skills_points", "mae_flops_sigmoid_points",
    "mae_point_points", "bias_points", "bias_point_points", "coverage_50", "coverage_90",
    "width_90_points", "crps_points", "share_over", "over_rate_point", "p_over_mean",
    "p_over_auc", "p_over_ece",
)


def summary_markdown(result: BacktestResult) -> str:
    """The summary as Markdown: per set, the headline rows then per benchmark and group."""
    s = result.summary
    cols = [c for c in _MD_COLUMNS if c in s.columns]
    st = result.settings
    head = st.get("protocol", "?")
    if st.get("cutoff"):
        head += f" (cut-off {st['cutoff']})"
    out = [f"# Backtest: {head}", ""]
    if "sampler" in st:
        sm = st["sampler"]
        out.append(
            f"Model: K={st.get('model', {}).get('n_skills', '?')}; sampler: {sm.get('chains')} chains, "
            f"{sm.get('warmup')} warm-up, {sm.get('draws')} draws; seed {st.get('seed')}. "
            f"{len(result.fits)} fits, {st.get('wall_seconds', float('nan')):.0f} s."
        )
        out.append("")
    out.append("MAE, bias, width and CRPS in score points (1 point = 0.01). `point`: the classic "
               "point skills law fitted on the same table as the posterior; `over_rate_point`: how "
               "often it was above the truth; `p_over_*`: the reported P(truth < point) against that.")
    for set_name, block in s.groupby("set", sort=False):
        out += ["", f"## Set {set_name}", ""]
        for level, title in (
            ("pooled", None),
            ("benchmark", "Per benchmark"),
            ("group", "Per group"),
            ("distance", "Per extrapolation distance (decades of size beyond the family's observed models)"),
        ):
            rows = block[block["level"].isin(["pooled", "group mean"] if level == "pooled" else [level])]
            if rows.empty:
                continue
            if title:
                out += ["", f"### {title}", ""]
            tab = rows[["level"] + cols] if level == "pooled" else rows[cols]
            out.append(_markdown(tab))
            if level == "pooled" and "group" in result.cells and "lower_90" in result.cells:
                out += ["", _bootstrap_line(result.cells[result.cells["set"] == set_name])]
            if level == "pooled" and not result.reference.empty:
                out += ["", _reference_line(result.reference[result.reference["set"] == set_name])]
    if {"point", "p_overestimate", "truth", "median"} <= set(result.cells.columns):
        from .overestimate import guidance_markdown

        out += ["", guidance_markdown(result.cells).rstrip()]
    return "\n".join(out) + "\n"


def _reference_line(reference: pd.DataFrame) -> str:
    """One sentence: the pooled coverages a calibrated forecast would give (90% ranges)."""
    r = calibrated_range(reference).set_index("metric")
    return (
        f"If the truths were drawn from the forecasts themselves (calibrated by construction; "
        f"{reference['replicate'].nunique()} joint draws per fold, `metrics.calibrated_range`), "
        f"the pooled 50% coverage would fall in {r.loc['coverage_50', 'lower']:.3f}-"
        f"{r.loc['coverage_50', 'upper']:.3f} and the 90% coverage in "
        f"{r.loc['coverage_90', 'lower']:.3f}-{r.loc['coverage_90', 'upper']:.3f} (90% ranges)."
    )


def _bootstrap_line(cells: pd.DataFrame) -> str:
    """One sentence: the pooled metrics' 90% intervals from resampling the held-out groups."""
    b = group_bootstrap(cells).set_index("metric")
    parts = [
        f"{label} {b.loc[m, 'lower']:.{d}f}-{b.loc[m, 'upper']:.{d}f}"
        for m, label, d in (("mae_points", "MAE", 2), ("coverage_50", "50% coverage", 3),
                            ("coverage_90", "90% coverage", 3))
    ]
    return (f"Resampling the {int(b['groups'].iloc[0])} held-out groups (90% intervals of the "
            f"pooled values, `metrics.group_bootstrap`): " + ", ".join(parts) + ".")


def _figures(result: BacktestResult, out_dir: Path) -> list[Path]:
    try:
        plots = importlib.import_module("sloth_bayes.plots")
    except ImportError:
        print("[backtest] sloth_bayes.plots not available: no figures written", file=sys.stderr)
        return []
    names = [n for n in FIGURES if hasattr(plots, n)]
    missing = [n for n in FIGURES if n not in names]
    if missing:
        print(f"[backtest] sloth_bayes.plots lacks {', '.join(missing)}: those figures skipped",
              file=sys.stderr)
    if not names:
        return []
    import matplotlib

    if matplotlib.get_backend().lower() not in ("agg", "pdf", "svg", "cairo") and not os.environ.get("DISPLAY"):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig_dir = out_dir / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    written = []

    def save(draw, label: str, path: Path, figsize=(6, 4.5)) -> None:
        """Draw one figure with ``draw(ax)`` and write it; a failing figure is skipped."""
        fig, ax = plt.subplots(figsize=figsize)
        try:
            draw(ax)
            with atomic_path(path) as tmp:
                fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
            written.append(path)
        except Exception as exc:
            print(f"[backtest] figure {label} failed: {exc}", file=sys.stderr)
        finally:
            plt.close(fig)

    for set_name, cells in result.cells.groupby("set", sort=False):
        for name in names:
            def draw(ax, name=name, cells=cells, set_name=set_name):
                getattr(plots, name)(cells, ax=ax)
                ax.set_title(f"{ax.get_title()} ({set_name})".strip())

            save(draw, f"{name} ({set_name})", fig_dir / f"{set_name}_{name}.png")
    if _has_signal(result.cells):
        from .overestimate import reliability_diagram

        save(lambda ax: reliability_diagram(result.cells, ax=ax, by="set"), "reliability",
             fig_dir / "reliability.png", figsize=(6, 6))
    return written


def _has_signal(cells: pd.DataFrame) -> bool:
    return {"point", "p_overestimate", "truth", "median"} <= set(cells.columns)


def write_backtest(result: BacktestResult, out_dir, *, figures: bool = True) -> list[Path]:
    """Write ``cells.csv``, ``summary.csv``, ``fits.csv``, ``reference.csv``, ``summary.md``,
    ``signal.csv`` and ``guidance.csv`` (:func:`~sloth_bayes.overestimate.signal_scores`,
    :func:`~sloth_bayes.overestimate.guidance_table`), ``figures/reliability.png`` and (when
    :mod:`sloth_bayes.plots` provides them) ``figures/<set>_<plot>.png`` to ``out_dir``,
    each file atomically. Returns the paths written."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    tables = [("cells.csv", result.cells), ("summary.csv", result.summary), ("fits.csv", result.fits)]
    if not result.reference.empty:
        tables.append(("reference.csv", result.reference))
    if _has_signal(result.cells):
        from .overestimate import guidance_table, signal_scores

        tables += [("signal.csv", signal_scores(result.cells)), ("guidance.csv", guidance_table(result.cells))]
    for name, df in tables:
        with atomic_write(out / name) as fh:
            df.to_csv(fh, index=False)
        written.append(out / name)
    with atomic_write(out / "summary.md") as fh:
        fh.write(summary_markdown(result))
    written.append(out / "summary.md")
    if figures:
        written += _figures(result, out)
    return written


# -- command line --------------------------------------------------------------------------


def _split(values: list[str] | None) -> list[str]:
    out = []
    for v in values or []:
        out += [s.strip() for s in v.split(",") if s.strip()]
    return out


def cmd_backtest(args) -> int:
    from functools import partial

    from .data import read_csv
    from .datasets import find_leaderboard
    from .estimator import SlothBayes
    from .options import model_config

    if args.jobs <= 1:
        import numpyro

        numpyro.set_host_device_count(max(1, min(args.chains, os.cpu_count() or 1)))
    sets = _split(args.set) or ["v1"]
    unknown = [s for s in sets if s not in SETS]
    if unknown:
        print(f"error: unknown set(s) {', '.join(unknown)}; choose from {', '.join(SETS)}", file=sys.stderr)
        return 2
    sampler = {
        "chains": args.chains, "warmup": args.warmup, "draws": args.draws,
        "chain_method": args.chain_method,
    }
    if args.svi_steps is not None:
        sampler["svi_steps"] = args.svi_steps
    if args.svi_restarts is not None:
        sampler["svi_restarts"] = args.svi_restarts
    factory = partial(SlothBayes, config=model_config(args.option, args.skills), **sampler)
    path = find_leaderboard(args.data)
    table = read_csv(path, "training table")
    groups = _split(args.groups) or None
    result = run_backtest(
        table, sets=sets, protocol=args.protocol, model_factory=factory, seed=args.seed,
        jobs=args.jobs, baselines=not args.no_baselines, groups=groups,
        verbose=not getattr(args, "quiet", False), cutoff=args.cutoff, release=args.release,
    )
    written = write_backtest(result, args.out)
    head = result.summary[result.summary["level"].isin(["pooled", "group mean"])]
    cols = [c for c in ("set", "level", "n", "mae_points", "mae_point_skills_points",
                        "mae_flops_sigmoid_points", "coverage_50", "coverage_90", "width_90_points",
                        "crps_points") if c in head.columns]
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        print(head[cols].round(3).to_string(index=False))
    print(f"{len(result.cells)} cells, {len(result.fits)} fits, {result.settings['wall_seconds']:.0f} s; "
          f"wrote {len(written)} files to {args.out}")
    return 0


def register_cli(subparsers) -> None:
    """Add ``sloth-bayes backtest`` to the command line."""
    from .options import add_option_arg

    p = subparsers.add_parser(
        "backtest", help="score forecasts of held-out families (leave-one-family-out protocols)"
    )
    p.add_argument("data", nargs="?", help="CSV table (default: $SLOTH_BAYES_DATA, else the embedded table)")
    p.add_argument("--protocol", default="lofo-1", choices=list(PROTOCOLS),
                   help="lofo-1/lofo-2/zero-shot: held-out family groups; future: sub-families "
                        "released on or after --cutoff, from the older ones")
    p.add_argument("--cutoff", default=FUTURE_CUTOFF, metavar="YYYY-MM",
                   help=f"future protocol: first-release month from which a sub-family is new "
                        f"(default {FUTURE_CUTOFF})")
    p.add_argument("--release", default=None, metavar="CSV",
                   help="future protocol: CSV with Family2,release (default: the table's Release "
                        "column, else the release table shipped with the package)")
    p.add_argument("--set", action="append", metavar="SET",
                   help=f"benchmark set: {', '.join(SETS)} (repeatable or comma list; default v1)")
    p.add_argument("--groups", action="append", metavar="NAME",
                   help="only these groups (names or sub-families; repeatable or comma list)")
    p.add_argument("--out", required=True, help="folder for cells.csv, summary.csv/.md, figures")
    p.add_argument("--jobs", type=int, default=1, help="fits run at once (worker processes)")
    p.add_argument("--skills", type=int, default=None, help="number of latent skills K")
    add_option_arg(p)
    p.add_argument("--chains", type=int, default=4)
    p.add_argument("--warmup", type=int, default=1000)
    p.add_argument("--draws", type=int, default=1000)
    p.add_argument("--svi-steps", type=int, default=None)
    p.add_argument("--svi-restarts", type=int, default=None)
    p.add_argument("--chain-method", default="parallel", choices=["parallel", "sequential", "vectorized"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-baselines", action="store_true", help="skip the point baselines")
    p.set_defaults(func=cmd_backtest)

    g = subparsers.add_parser(
        "guidance", help="over-/under-estimation evidence of backtest folders (tables and figure)"
    )
    g.add_argument("folders", nargs="+", help="folders written by `backtest` (one per protocol)")
    g.add_argument("--out", required=True, help="Markdown file to write")
    g.add_argument("--figure", default=None, help="PNG file for the reliability diagram")
    g.set_defaults(func=cmd_guidance)


def cmd_guidance(args) -> int:
    """``sloth-bayes guidance DIR... --out FILE.md [--figure FILE.png]``."""
    from .overestimate import write_guidance

    for path in write_guidance(args.folders, args.out, figure=args.figure):
        print(f"wrote {path}")
    return 0
