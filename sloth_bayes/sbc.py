"""Simulation-based calibration (Talts et al. 2018, arXiv:1804.06788).

If the inference is right, the rank of a parameter's true value among posterior draws
obtained from data simulated with that value is uniform, whatever the model. Repeat: draw
parameters from the prior, simulate a table on a fixed design, fit it, record the rank of
each true scalar among ``L`` thinned posterior draws. Non-uniform ranks mean the sampler or
the model code is wrong (a U shape: posteriors too narrow; a hump: too wide; a slope:
biased). A deliberately broken variant, fitted with a prior different from the simulator's
(``prior_override``), must be rejected: that is the check that the check has power.

The fits are the package's own scheme (best-of-``svi_restarts`` mean-field SVI, chains
started around it, NUTS with a dense mass block for the population parameters), compiled
once per design: the simulated scores and the prior scales are arguments of the compiled
kernels, so each replication costs sampling time only. The same :class:`CompiledFitter`
serves the folds of a backtest (:mod:`sloth_bayes.backtest`): there the cell mask, also an
argument, leaves each fold's held-out cells out of the likelihood.

>>> from sloth_bayes.sbc import run_sbc
>>> result = run_sbc(reps=20, seed=0)                              # doctest: +SKIP
>>> result.tests[["p_chi2", "p_ks", "p"]]                          # doctest: +SKIP
>>> result.rejected()                                              # doctest: +SKIP
False
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, replace

import numpy as np
import pandas as pd

from .inference import (
    GLOBAL_SITES,
    NUTS_FIELDS,
    FlatSites,
    SamplerConfig,
    best_restart,
    chain_inits,
    nuts_sample_stats,
    site_dims,
    svi_restarts,
    to_key,
)
from .model import ModelConfig, deviation_pivots, skills_model
from .simulate import SimDesign, draw_prior, encode_table, prepare_design

__all__ = [
    "DEFAULT_GROUPS",
    "CompiledFitter",
    "SBCResult",
    "plot_ranks",
    "rank_statistics",
    "register_cli",
    "run_sbc",
    "uniformity_tests",
]

#: Parameter groups whose true values are ranked (posterior variable names).
DEFAULT_GROUPS = (
    "slopes",
    "instruct_shift",
    "loadings_free",
    "difficulty",
    "sigma_bench",
    "sigma_logit",
    "sigma_coarse",
    "sigma_sub",
    "tau_slope",
    "alpha",
    "sigma_family_bench",
    "instruct_bench",
    "link_power",
)
#: Sampler settings of a modest SBC run on a shared 2-core machine.
SBC_SAMPLER = SamplerConfig(chains=2, warmup=200, draws=200, svi_steps=300, svi_restarts=2)


# --- fitting, compiled once per design ---------------------------------------------------------
def _prior_scales(config: ModelConfig) -> tuple[str, ...]:
    """Names of the float prior scales of a configuration: dynamic arguments."""
    return tuple(f.name for f in fields(config.priors) if isinstance(getattr(config.priors, f.name), float))


class CompiledFitter:
    """SVI-initialised NUTS for tables that share one design, compiled once.

    The scores (``y``), the prior scales of the configuration and the cell mask (which
    observed cells enter the likelihood) are arguments of the compiled SVI and NUTS
    kernels, not constants: a new simulated table, a fit with a different prior scale
    (same structure: skills, anchors, switches) or a fit that leaves other cells out (a
    backtest fold) reuses the kernels. Chains run one after the other (one process on a
    shared machine).

    The kernels are compiled ahead of time, on first use, once per kind (SVI, one NUTS
    chain) and argument structure; :attr:`compilations` counts the builds and
    :attr:`compile_seconds` their cost (tracing + XLA), which :meth:`fit` reports apart
    from the sampling time.

    Parameters
    ----------
    design : :class:`~sloth_bayes.simulate.SimDesign` (LLMs, families, observed cells), e.g.
        from :func:`~sloth_bayes.simulate.prepare_design` (simulation) or
        :func:`~sloth_bayes.simulate.encode_table` (a real table; see :meth:`from_table`).
    config : structure of the model to fit (the prior scales can change per call).
    sampler : NUTS and SVI settings (``chain_method`` and ``pooled_warmup`` are ignored: each
        chain runs alone, one after the other, adapting its own mass matrix).
    static_boundary : the scores are always the design's (``fit(y=None)``, e.g. folds of a
        backtest): keep the design's indices of the exact 0/1 cells as constants (cheaper
        likelihood; a ``y`` with other 0/1 cells is refused). ``False`` (simulation): the
        likelihood finds them itself, so any ``y`` works.
    """

    def __init__(
        self,
        design: SimDesign,
        config: ModelConfig | None = None,
        sampler: SamplerConfig | None = None,
        *,
        static_boundary: bool = False,
    ):
        self.design = design
        self.config = config or design.config
        self.sampler = sampler or SBC_SAMPLER
        self.static_boundary = bool(static_boundary)
        data = design.data
        self.n_cells = int(np.shape(data.y)[0])
        self.default_mask = (
            np.ones(self.n_cells, bool) if data.cell_mask is None else np.asarray(data.cell_mask, bool)
        )
        # Simulated scores change with every table: their 0/1 cells are unknown in advance,
        # so the likelihood finds them itself (``boundary=None``) and the kernels do not
        # depend on them. The mask is an argument of the kernels, not part of the data.
        self._data = data._replace(
            boundary=data.boundary if self.static_boundary else None, cell_mask=None
        )
        self._scale_names = _prior_scales(self.config)
        self._compiled: dict = {}
        #: Builds (trace + XLA compilation) of each kernel and their total seconds.
        self.compilations = {"svi": 0, "chain": 0}
        self.compile_seconds = 0.0
        #: Seconds of the builds per kernel and phase (``"svi/trace"``, ``"chain/xla"``...).
        self.compile_times: dict[str, float] = {}
        self._sites = self._latent_sites()

    @classmethod
    def from_table(
        cls,
        table: pd.DataFrame,
        config: ModelConfig | None = None,
        sampler: SamplerConfig | None = None,
        *,
        benchmarks=None,
        floors=None,
        n_items=None,
    ) -> "CompiledFitter":
        """A fitter of a real table (validated and encoded as ``SlothBayes.fit`` does), whose
        cells can be left out of the likelihood per fit (``fit(mask=...)``)."""
        design = encode_table(table, config, benchmarks=benchmarks, floors=floors, n_items=n_items)
        return cls(design, design.config, sampler, static_boundary=True)

    @property
    def latent_sites(self) -> tuple[str, ...]:
        """The model's sampled sites (those the configuration switches on)."""
        return self._sites

    def _model(self, y, scales, mask, frame):
        cfg = self.config
        if scales:  # a copy holding the (traced) scales; no __init__ checks on tracers
            cfg, priors = copy.copy(cfg), copy.copy(cfg.priors)
            for name, value in scales.items():
                object.__setattr__(priors, name, value)
            object.__setattr__(cfg, "priors", priors)
        return skills_model(self._data._replace(cell_mask=mask, frame=frame), cfg, y=y)

    def _frame(self, mask: np.ndarray) -> tuple:
        """The slope deviations' pivots and ranges for the cells in ``mask`` (host-side
        NumPy: a kernel argument, not recomputed at every gradient)."""
        return deviation_pivots(self._data._replace(cell_mask=np.asarray(mask, bool)))

    def _latent_sites(self) -> tuple[str, ...]:
        """The sampled sites, from an abstract trace of the model (no op is run eagerly)."""
        import jax
        from numpyro import handlers

        names: list[str] = []

        def trace(y, scales, mask, frame):
            with handlers.block(), handlers.seed(rng_seed=0):
                tr = handlers.trace(self._model).get_trace(y, scales, mask, frame)
            names.extend(k for k, s in tr.items() if s["type"] == "sample" and not s["is_observed"])
            return 0.0

        y = jax.ShapeDtypeStruct((self.n_cells,), jax.numpy.float32)
        jax.eval_shape(trace, y, self.scales(self.config), self.default_mask, self._frame(self.default_mask))
        return tuple(names)

    def scales(self, config: ModelConfig) -> dict:
        """The prior scales of ``config`` as kernel arguments (its structure must match)."""
        import jax.numpy as jnp

        differ = [f.name for f in fields(config) if f.name != "priors"
                  and getattr(config, f.name) != getattr(self.config, f.name)]
        differ += [n for n in {f.name for f in fields(config.priors)} - set(self._scale_names)
                   if getattr(config.priors, n) != getattr(self.config.priors, n)]
        if differ:
            raise ValueError(
                f"config differs from the compiled one in {sorted(differ)} (structure, not prior "
                "scales): build another CompiledFitter for it"
            )
        return {n: jnp.asarray(getattr(config.priors, n), jnp.float32) for n in self._scale_names}

    def _kernel(self, kind: str, args: tuple):
        """The compiled ``kind`` kernel ("svi" or "chain") for arguments shaped as ``args``,
        built (traced and compiled ahead of time) on first use."""
        import jax

        leaves, treedef = jax.tree.flatten(args)
        key = (kind, treedef, tuple((np.shape(a), str(jax.numpy.result_type(a))) for a in leaves))
        fn = self._compiled.get(key)
        if fn is None:
            t0 = time.perf_counter()
            build = self._build_svi if kind == "svi" else self._build_chain
            lowered = build().lower(*args)
            t1 = time.perf_counter()
            fn = lowered.compile()
            t2 = time.perf_counter()
            for phase, dt in (("trace", t1 - t0), ("xla", t2 - t1)):
                self.compile_times[f"{kind}/{phase}"] = self.compile_times.get(f"{kind}/{phase}", 0.0) + dt
            self.compile_seconds += t2 - t0
            self.compilations[kind] += 1
            self._compiled[key] = fn
        return fn

    def _build_svi(self):
        import jax

        s = self.sampler
        model = self._model

        def restarts(keys, k_init, y, scales, mask, frame):
            # best restart (lowest final loss) -> every chain's start, all inside the kernel
            loc, scale, losses = svi_restarts(model, (y, scales, mask, frame), {}, keys, s.svi_steps)
            start = chain_inits(*best_restart(loc, scale, losses), s.chains, s.init_jitter, k_init)
            return start, losses

        return jax.jit(restarts)

    def _build_chain(self):
        import jax
        import jax.numpy as jnp
        from numpyro.infer import NUTS

        s = self.sampler
        dense = tuple(n for n in GLOBAL_SITES if n in self._sites) if s.dense_globals else False
        model = self._model

        def chain(key, inits, c, y, scales, mask, frame):
            args = (y, scales, mask, frame)
            layout = FlatSites.of_model(model, args, {}, dense)  # the flat state, as sample_nuts
            if inits is None:
                init = layout.uniform(jax.random.fold_in(key, 1))
            else:
                init = layout.flatten(jax.tree.map(lambda a: a[c], inits))
            kernel = NUTS(
                potential_fn=layout.potential_fn(model, args, {}),
                dense_mass=layout.dense_mass,
                target_accept_prob=s.target_accept,
                max_tree_depth=s.max_tree_depth,
            )
            state = kernel.init(key, s.warmup, init, model_args=(), model_kwargs={})

            def record(st):
                return st.z, {name: getattr(st, name) for name in NUTS_FIELDS}

            # One loop over warm-up and sampling (the kernel adapts while ``i < warmup``), as
            # ``MCMC`` does: the NUTS step is compiled once, not once per phase. Warm-up
            # states are written to slot 0, which the first kept draw overwrites.
            buf = jax.tree.map(lambda a: jnp.zeros((s.draws,) + jnp.shape(a), a.dtype), record(state))

            def step(carry, i):
                st, buf, warm_div = carry
                st = kernel.sample(st, args, {})
                j = jnp.clip(i - s.warmup, 0, s.draws - 1)
                buf = jax.tree.map(lambda b, r: b.at[j].set(r), buf, record(st))
                return (st, buf, warm_div + ((i < s.warmup) & st.diverging)), None

            (state, buf, warm_div), _ = jax.lax.scan(
                step, (state, buf, jnp.zeros((), jnp.int32)), jnp.arange(s.warmup + s.draws)
            )
            z, fields = buf
            post = jax.vmap(layout.postprocess_fn(model, args, {}))(z)
            return post, {**nuts_sample_stats(fields), "warmup_divergences": warm_div}

        return jax.jit(chain)

    def _y(self, y):
        if y is None:
            return np.asarray(self.design.data.y, float)
        y = np.asarray(y, float)
        if y.shape != (self.n_cells,):
            raise ValueError(f"y must hold one score per observed cell ({self.n_cells}), got {y.shape}")
        if self.static_boundary:
            b = np.flatnonzero((y <= 0.0) | (y >= 1.0))
            if not np.array_equal(b, np.asarray(self._data.boundary)):
                raise ValueError(
                    "y has exact 0/1 scores in other cells than the design (static_boundary=True "
                    "keeps the design's): build the fitter with static_boundary=False"
                )
        return y

    def fit(self, y=None, seed=0, config: ModelConfig | None = None, mask=None) -> tuple[dict, dict]:
        """Sample the posterior of the scores ``y`` (one per observed cell of the design).

        Parameters
        ----------
        y : scores of the design's observed cells (``None``: the design's own).
        seed : int or JAX key.
        config : prior scales to fit with (same structure as the compiled configuration).
        mask : (cells,) bool, the cells in the likelihood (``None``: the design's mask, all
            cells unless the design has one). Left-out cells do not inform the fit at all:
            their scores may be anything.

        Returns
        -------
        draws : dict of numpy arrays (chain, draw, ...), every latent and deterministic site.
        stats : dict of numpy arrays (chain, draw): ``diverging``, ``n_steps``, ``lp``,
            ``energy``, ``acceptance_rate``; plus ``warmup_divergences`` (chain,),
            ``svi_losses`` and the seconds: ``seconds`` (all), ``compile_seconds`` (kernels
            built by this call), ``svi_seconds`` and ``nuts_seconds`` (running them).
        """
        import jax
        import jax.numpy as jnp

        t0 = time.perf_counter()
        c0 = self.compile_seconds
        s = self.sampler
        scales = self.scales(config or self.config)
        y = jnp.asarray(self._y(y), jnp.float32)
        mask = self.default_mask if mask is None else np.asarray(mask, bool)
        if mask.shape != (self.n_cells,):
            raise ValueError(f"mask must have one entry per observed cell ({self.n_cells}), got {mask.shape}")
        frame = tuple(jnp.asarray(a, jnp.float32) for a in self._frame(mask))
        mask = jnp.asarray(mask)
        k_svi, k_init, k_mcmc = jax.random.split(to_key(seed), 3)
        inits, losses = None, []
        if s.svi_restarts > 0 and s.svi_steps > 0:
            args = (jax.random.split(k_svi, s.svi_restarts), k_init, y, scales, mask, frame)
            start, loss = self._kernel("svi", args)(*args)
            losses = np.asarray(loss, float)
            if np.isfinite(losses).any():  # else NUTS's own initialisation
                inits = start
        t_svi = time.perf_counter() - t0
        c_svi = self.compile_seconds - c0
        outs = []
        for c, k in enumerate(jax.random.split(k_mcmc, s.chains)):
            args = (k, inits, jnp.asarray(c, jnp.int32), y, scales, mask, frame)
            outs.append(self._kernel("chain", args)(*args))
        outs = jax.device_get(outs)
        draws = {k: np.stack([np.asarray(o[0][k]) for o in outs]) for k in outs[0][0]}
        stats = {k: np.stack([np.asarray(o[1][k]) for o in outs]) for k in outs[0][1]}
        stats["svi_losses"] = np.asarray(losses)
        total = time.perf_counter() - t0
        compiled = self.compile_seconds - c0
        stats["seconds"] = total
        stats["compile_seconds"] = compiled
        stats["svi_seconds"] = t_svi - c_svi
        stats["nuts_seconds"] = total - t_svi - (compiled - c_svi)
        return draws, stats


# --- ranks and tests ---------------------------------------------------------------------------
def _labels(name: str, shape: tuple, coords: dict) -> list[str]:
    if not shape:
        return [name]
    dims = site_dims().get(name, [])
    axes = []
    for i, n in enumerate(shape):
        c = coords.get(dims[i]) if i < len(dims) else None
        axes.append([str(v) for v in c] if c is not None and len(c) == n else [str(j) for j in range(n)])
    return [
        f"{name}[{', '.join(ix)}]"
        for ix in (np.array(np.meshgrid(*axes, indexing="ij")).reshape(len(shape), -1).T)
    ]


def rank_statistics(true, draws, *, n_draws: int | None = 99, rng=None) -> np.ndarray:
    """Rank of each true scalar among (thinned) posterior draws.

    Parameters
    ----------
    true : array (...), the generating values.
    draws : array (chain, draw, ...) of posterior draws.
    n_draws : L, the number of draws kept (evenly spaced over the pooled chains, which
        reduces autocorrelation); ``None`` keeps all.
    rng : numpy Generator for breaking ties at random.

    Returns
    -------
    numpy int array, shape of ``true``: ranks in ``0..L`` (uniform when calibrated).
    """
    rng = rng if rng is not None else np.random.default_rng(0)
    true = np.asarray(true)
    pooled = np.asarray(draws).reshape((-1,) + true.shape)
    if n_draws is not None and n_draws < len(pooled):
        pooled = pooled[np.linspace(0, len(pooled) - 1, n_draws).round().astype(int)]
    below = (pooled < true).sum(0)
    ties = (pooled == true).sum(0)
    return below + rng.integers(0, ties + 1)


def _bin_probs(n_draws: int, bins: int) -> np.ndarray:
    """Probability of each rank bin under uniform ranks on 0..L (bins of near-equal width)."""
    edges = np.floor(np.arange(n_draws + 1) * bins / (n_draws + 1)).astype(int)
    return np.bincount(edges, minlength=bins) / (n_draws + 1)


def default_bins(n_ranks: int, n_draws: int) -> int:
    """Number of rank bins: about 5 expected ranks per bin, at least 4 (a U shape needs
    more than two bins to show) and at most 20."""
    return int(min(max(4, min(20, n_ranks // 5)), n_draws + 1))


def uniformity_tests(ranks: pd.DataFrame, n_draws: int, bins: int | None = None) -> pd.DataFrame:
    """Per parameter group, tests of uniform ranks.

    Columns
    -------
    n_reps, n_scalars, n_ranks : replications, scalars per replication, ranks pooled.
    p_chi2 : chi-square test of the binned pooled ranks.
    p_ks : Kolmogorov-Smirnov test of the pooled normalised ranks ``(rank + U) / (L + 1)``.
        Both pool scalars of one replication, which are correlated (e.g. the loadings of
        one fit), so they reject too often when a group has many scalars and few reps.
    p_bias, p_spread : one-sample t-tests across replications (which are independent) of
        the per-replication mean of ``u - 1/2`` (zero unless posteriors are shifted) and of
        ``(u - 1/2)^2 - 1/12`` (positive for too narrow posteriors, negative for too wide).
    p : the group's verdict, ``min(1, 2 min(p_bias, p_spread))`` (Bonferroni), valid
        whatever the correlation of the scalars within a replication.
    """
    from scipy import stats

    rows = []
    for group, g in ranks.groupby("group", sort=False):
        n_ranks = len(g)
        b = bins or default_bins(n_ranks, n_draws)
        probs = _bin_probs(n_draws, b)
        binned = np.floor(g["rank"].to_numpy() * b / (n_draws + 1)).astype(int)
        counts = np.bincount(binned, minlength=b)
        p_chi2 = float(stats.chisquare(counts, probs * n_ranks).pvalue) if n_ranks >= 2 else np.nan
        p_ks = float(stats.kstest(g["u"].to_numpy(), "uniform").pvalue) if n_ranks >= 2 else np.nan
        per_rep = (
            g.assign(c=g["u"] - 0.5, s=(g["u"] - 0.5) ** 2 - 1 / 12).groupby("rep")[["c", "s"]].mean()
        )
        p_rep = []
        for col in ("c", "s"):
            v = per_rep[col].to_numpy()
            if len(v) >= 2 and np.std(v) > 0:
                p_rep.append(float(stats.ttest_1samp(v, 0.0).pvalue))
            elif len(v) >= 2:  # identical values: exactly 0 is fine, anything else is not
                p_rep.append(1.0 if np.allclose(v, 0) else 0.0)
            else:
                p_rep.append(np.nan)
        p = min(1.0, 2 * np.nanmin(p_rep)) if np.isfinite(p_rep).any() else np.nan
        rows.append(
            {
                "group": group,
                "n_reps": int(g["rep"].nunique()),
                "n_scalars": int(g.groupby("rep").size().max()),
                "n_ranks": n_ranks,
                "bins": b,
                "p_chi2": p_chi2,
                "p_ks": p_ks,
                "p_bias": p_rep[0],
                "p_spread": p_rep[1],
                "p": p,
            }
        )
    return pd.DataFrame(rows).set_index("group")


@dataclass
class SBCResult:
    """Outcome of :func:`run_sbc`.

    Attributes
    ----------
    ranks : one row per replication x scalar: ``rep``, ``group``, ``parameter``, ``true``,
        ``rank`` (0..L), ``u`` (normalised rank), ``posterior_mean``.
    tests : :func:`uniformity_tests` per group.
    fits : one row per replication: divergences, mean leapfrog steps, max R-hat and min
        bulk ESS over the ranked scalars, seconds.
    n_draws : L, posterior draws per rank.
    settings : what was run (reps, design, configurations, sampler, seed).
    """

    ranks: pd.DataFrame
    tests: pd.DataFrame
    fits: pd.DataFrame
    n_draws: int
    settings: dict = field(default_factory=dict)

    def rejected(self, alpha: float = 0.01) -> bool:
        """True when some group's ranks are not uniform at level ``alpha`` (Bonferroni over
        the groups)."""
        p = self.tests["p"].dropna()
        return bool(len(p) and (p < alpha / len(p)).any())

    def text(self, alpha: float = 0.01) -> str:
        verdict = "REJECTED: ranks are not uniform" if self.rejected(alpha) else "not rejected"
        fits = self.fits
        lines = [
            f"SBC: {self.settings.get('reps')} replications, L = {self.n_draws} draws per rank; "
            f"calibration {verdict} (level {alpha}, Bonferroni over {len(self.tests)} groups).",
            f"fits: {int(fits['divergences'].sum())} divergences in total, max R-hat "
            f"{fits['max_rhat'].max():.3f}, median seconds per fit {fits['seconds'].median():.0f}.",
            self.tests.to_string(float_format=lambda v: f"{v:.3g}"),
        ]
        return "\n".join(lines)

    def plot(self, **kwargs):
        return plot_ranks(self, **kwargs)


def _rhat_ess(draws: np.ndarray) -> tuple[float, float]:
    """Max rank-normalised R-hat and min bulk ESS over the scalars of (chain, draw, ...)."""
    import arviz as az

    flat = draws.reshape(draws.shape[0], draws.shape[1], -1)
    if draws.shape[0] < 2:
        return np.nan, np.nan
    rh = np.asarray(az.rhat(flat, chain_axis=0, draw_axis=1), float)
    es = np.asarray(az.ess(flat, chain_axis=0, draw_axis=1, method="bulk"), float)
    return float(np.nanmax(rh)) if np.isfinite(rh).any() else np.nan, float(
        np.nanmin(es)
    ) if np.isfinite(es).any() else np.nan


def run_sbc(
    reps: int = 20,
    *,
    template: pd.DataFrame | None = None,
    config: ModelConfig | None = None,
    prior_override: ModelConfig | None = None,
    sampler: SamplerConfig | None = None,
    groups: Sequence[str] = DEFAULT_GROUPS,
    n_draws: int = 99,
    seed: int = 0,
    design: SimDesign | None = None,
    fitter: CompiledFitter | None = None,
    progress: Callable[[str], None] | None = None,
    **design_kwargs,
) -> SBCResult:
    """Simulation-based calibration of the model and its inference on one design.

    Parameters
    ----------
    reps : replications (prior draw -> simulated table -> fit -> ranks).
    template : a leaderboard whose design is kept (see
        :func:`~sloth_bayes.simulate.prepare_design`); ``None``: a synthetic design
        (``design_kwargs`` such as ``n_families=3``, ``benchmarks=[...]``).
    config : the simulator's model (default ``ModelConfig(n_skills=1)``).
    prior_override : fit with this configuration instead (same structure, other prior
        scales): a deliberately wrong model, which a working SBC must reject.
    sampler : fit settings (default :data:`SBC_SAMPLER`).
    groups : posterior variables whose scalars are ranked.
    n_draws : L, thinned posterior draws per rank.
    seed : seeds the design, the prior draws and the fits.
    design, fitter : reuse an encoded design / compiled fitter (e.g. between a correct and
        a broken run: no recompilation).
    progress : called with a line of text after each replication (e.g. ``print``).

    Returns
    -------
    SBCResult
    """
    config = config or ModelConfig(n_skills=1)
    sampler = sampler or SBC_SAMPLER
    if design is None:
        design = prepare_design(template, config, seed=seed, **design_kwargs)
    if fitter is None:
        fitter = CompiledFitter(design, config, sampler)
    fit_config = prior_override or config
    truth_all = draw_prior(design, reps, seed=seed, config=config)
    coords = design.coords()
    rng = np.random.default_rng(seed)
    n_total = sampler.chains * sampler.draws
    L = min(n_draws, n_total) if n_draws else n_total
    rank_rows, fit_rows = [], []
    for r in range(reps):
        draws, stats = fitter.fit(truth_all["y"][r], seed=seed * 100_003 + r + 1, config=fit_config)
        rh, es = [], []
        for g in groups:
            if g not in draws or g not in truth_all:
                continue
            true = truth_all[g][r]
            ranks = rank_statistics(true, draws[g], n_draws=L, rng=rng)
            u = (ranks + rng.random(ranks.shape)) / (L + 1)
            mean = draws[g].mean((0, 1))
            for lab, t, k, uu, m in zip(
                _labels(g, true.shape, coords), true.ravel(), ranks.ravel(), u.ravel(), np.ravel(mean)
            ):
                rank_rows.append(
                    {
                        "rep": r,
                        "group": g,
                        "parameter": lab,
                        "true": float(t),
                        "rank": int(k),
                        "u": float(uu),
                        "posterior_mean": float(m),
                    }
                )
            a, b = _rhat_ess(draws[g])
            rh.append(a)
            es.append(b)
        fit_rows.append(
            {
                "rep": r,
                "divergences": int(stats["diverging"].sum()),
                "warmup_divergences": int(np.sum(stats["warmup_divergences"])),
                "mean_steps": float(stats["n_steps"].mean()),
                "max_rhat": float(np.nanmax(rh)) if np.isfinite(rh).any() else np.nan,
                "min_ess_bulk": float(np.nanmin(es)) if np.isfinite(es).any() else np.nan,
                "seconds": float(stats["seconds"]),
            }
        )
        if progress is not None:
            f = fit_rows[-1]
            progress(
                f"rep {r + 1}/{reps}: {f['seconds']:.0f} s, {f['divergences']} divergences, "
                f"max R-hat {f['max_rhat']:.3f}, mean {f['mean_steps']:.0f} leapfrog steps"
            )
    ranks = pd.DataFrame(rank_rows)
    settings = {
        "reps": reps,
        "seed": seed,
        "n_llms": len(design.table),
        "benchmarks": design.benchmarks,
        "n_cells": int(len(design.data.y)),
        "config": config.to_dict(),
        "fit_config": fit_config.to_dict(),
        "sampler": sampler.to_dict(),
        "design": {k: v for k, v in design_kwargs.items()} if template is None else "template",
    }
    return SBCResult(
        ranks=ranks,
        tests=uniformity_tests(ranks, L),
        fits=pd.DataFrame(fit_rows),
        n_draws=L,
        settings=settings,
    )


# --- figure ------------------------------------------------------------------------------------
def plot_ranks(result: SBCResult, *, bins: int | None = None, axes=None, ncols: int = 4):
    """Rank histograms, one panel per group, with the 99% band of counts under uniformity.

    Returns (figure, axes array). Never calls ``plt.show()``.
    """
    import matplotlib.pyplot as plt
    from scipy import stats

    groups = list(result.tests.index)
    if axes is None:
        nrows = int(np.ceil(len(groups) / ncols))
        fig, axes = plt.subplots(
            nrows, ncols, figsize=(3.0 * ncols, 2.3 * nrows), squeeze=False, layout="constrained"
        )
    else:
        axes = np.atleast_2d(np.asarray(axes))
        fig = axes.flat[0].figure
    L = result.n_draws
    for ax, g in zip(axes.flat, groups):
        rk = result.ranks.loc[result.ranks["group"] == g, "rank"].to_numpy()
        b = bins or int(result.tests.loc[g, "bins"])
        probs = _bin_probs(L, b)
        counts = np.bincount(np.floor(rk * b / (L + 1)).astype(int), minlength=b)
        lo, hi = stats.binom.ppf(0.005, len(rk), probs), stats.binom.ppf(0.995, len(rk), probs)
        x = np.arange(b)
        ax.fill_between(
            np.r_[x, b] - 0.5, np.r_[lo, lo[-1]], np.r_[hi, hi[-1]], step="post", color="0.85", lw=0
        )
        ax.bar(x, counts, width=0.9, color="C0")
        ax.axhline(len(rk) / b, color="0.4", lw=0.8)
        ax.set_title(f"{g}  p={result.tests.loc[g, 'p']:.2g}", fontsize=9)
        ax.set_xticks([0, b - 1], ["low", "high"])
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(groups) :]:
        ax.set_visible(False)
    fig.suptitle(
        f"SBC rank histograms ({result.settings.get('reps')} reps, L={L}; grey: 99% band if uniform)",
        fontsize=10,
    )
    return fig, axes


# --- command line ------------------------------------------------------------------------------
def cmd_sbc(args) -> int:
    import json
    from pathlib import Path

    import matplotlib

    matplotlib.use("Agg")
    from .data import read_csv
    from .utils import atomic_path, atomic_write

    template = read_csv(args.template, "template table") if args.template else None
    config = ModelConfig(n_skills=args.skills)
    override = config.with_options(slope=args.broken_slope_scale) if args.broken_slope_scale else None
    sampler = replace(SBC_SAMPLER, chains=args.chains, warmup=args.warmup, draws=args.draws)
    design_kwargs = {} if template is not None else {"n_families": args.families}
    result = run_sbc(
        args.reps,
        template=template,
        config=config,
        prior_override=override,
        sampler=sampler,
        n_draws=args.n_draws,
        seed=args.seed,
        progress=(lambda line: None) if getattr(args, "quiet", False) else _to_stderr,
        **design_kwargs,
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name, frame in (("ranks", result.ranks), ("fits", result.fits), ("tests", result.tests)):
        with atomic_write(out / f"sbc_{name}.csv") as fh:
            frame.to_csv(fh, index=name == "tests")
    with atomic_write(out / "sbc_settings.json") as fh:
        json.dump(result.settings, fh, indent=1, default=str)
    fig, _ = result.plot()
    with atomic_path(out / "sbc_ranks.png") as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    print(result.text())
    print(f"wrote {out}/sbc_ranks.csv, sbc_tests.csv, sbc_fits.csv, sbc_ranks.png")
    return 1 if result.rejected() else 0


def _to_stderr(line: str) -> None:
    """Progress of ``sloth-bayes sbc``: stderr, so that stdout holds the verdict only."""
    import sys

    print(line, file=sys.stderr, flush=True)


def register_cli(subparsers) -> None:
    p = subparsers.add_parser(
        "sbc",
        help="simulation-based calibration: ranks of true parameters among posterior draws",
        description="Exit status 0 when ranks look uniform, 1 when calibration is rejected.",
    )
    p.add_argument("--reps", type=int, default=20, help="replications (fits)")
    p.add_argument("--out", default="out/sbc", help="folder for ranks, tests and the figure")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--skills", type=int, default=1)
    p.add_argument("--families", type=int, default=4, help="coarse families of the synthetic design")
    p.add_argument("--template", default=None, help="CSV whose design (LLMs, observed cells) is kept")
    p.add_argument("--chains", type=int, default=SBC_SAMPLER.chains)
    p.add_argument("--warmup", type=int, default=SBC_SAMPLER.warmup)
    p.add_argument("--draws", type=int, default=SBC_SAMPLER.draws)
    p.add_argument("--n-draws", type=int, default=99, help="L: thinned posterior draws per rank")
    p.add_argument(
        "--broken-slope-scale",
        type=float,
        default=None,
        help="fit with this slope prior scale instead of the simulator's (a check that SBC rejects)",
    )
    p.set_defaults(func=cmd_sbc)
