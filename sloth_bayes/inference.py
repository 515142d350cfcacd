"""Inference: the only module that runs SVI / NUTS and converts draws to ArviZ.

Why SVI first: factor models have several skill solutions (rotations that the positivity
constraint does not rule out); chains started at random settle in different ones and R-hat
fails. We run a few mean-field SVI fits from random starts, keep the best ELBO, and start
every NUTS chain from its own draw of that fit (dispersed, but in the same basin). Chains
that still end in different solutions are reported by the diagnostics, never pooled
silently.
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import xarray as xr
from numpyro.infer import MCMC, NUTS

from .model import (
    CENTRED_SITES,
    COVARIATES,
    DEVIATION_COVARIATES,
    Encoding,
    ModelConfig,
    ModelData,
    centredness,
    learns_floor,
    loadings_matrix,
    profiled_benchmarks,
    recentre,
    skills_model,
    token_group_labels,
)

CHAIN_METHODS = ("parallel", "sequential", "vectorized")


#: Population-level sites, strongly correlated with each other (loadings vs difficulties vs
#: slopes): they share one dense block of the mass matrix; the many per-family / per-LLM
#: sites keep a diagonal one.
GLOBAL_SITES = (
    "slopes",
    "instruct_shift",
    "sigma_sub",
    "sigma_coarse",
    "tau_slope",
    "loadings_free",
    "difficulty",
    "sigma_bench_unfolded",
    "sigma_logit",
    "instruct_bench",
    "floor_lift_unfolded",
    "log_link_power",
    "sigma_family_bench",
    "tau_saturation",
    "saturation_rate_unfolded",
)


def _global_sites(config: ModelConfig, data: ModelData | None = None) -> tuple[str, ...]:
    """The GLOBAL_SITES this configuration has (switched-off terms have no site; nor has
    the floor lift where ``data`` has no benchmark of a lifted kind)."""
    off = set()
    if not config.slope_deviations:
        off.add("tau_slope")
    if not (config.learned_floors if data is None else learns_floor(data)):
        off.add("floor_lift_unfolded")
    if not config.family_profile:
        off.add("sigma_family_bench")
    if not config.saturation:
        off.update(("tau_saturation", "saturation_rate_unfolded"))
    return tuple(s for s in GLOBAL_SITES if s not in off)


@dataclass(frozen=True)
class SamplerConfig:
    """NUTS settings (what ``SlothBayes.fit`` runs; ``docs/model.md`` section 7 says why each
    part is there, ``docs/validation.md`` what it achieves).

    ``chain_method``: ``parallel`` (one CPU/GPU device per chain; needs
    ``numpyro.set_host_device_count`` before JAX starts, else NumPyro falls back to
    sequential), ``sequential`` or ``vectorized``. ``svi_restarts`` x ``svi_steps``: the
    mean-field SVI fits whose best starts the chains (``init_jitter``: how far apart).
    ``svi_mass``: the warm-up starts from the SVI variances as its inverse mass matrix instead
    of the identity; ``warmup_tree_depth`` caps the trees during the warm-up only (both halve
    the warm-up's cost). ``pooled_warmup``: after ``pool_after`` of the warm-up, one mass
    matrix is estimated from every chain's draws (:func:`pooled_inverse_mass`; one chain alone
    can under-estimate the variance of a weakly identified direction and crawl along it).
    ``adaptive_centring`` (with the pooled warm-up): the family offsets are then sampled
    partially centred, each with the centredness the first part's draws show
    (:func:`~sloth_bayes.model.pinned_offsets`): the same posterior in coordinates without the
    curved ridge between a pinned offset and its spread. ``dense_globals``: one dense mass
    block for the population-level sites. Backtest and SBC folds
    (:class:`~sloth_bayes.sbc.CompiledFitter`) run their chains apart and ignore the pooled
    warm-up, the centring, ``svi_mass``, ``warmup_tree_depth`` and ``pool_after``."""

    chains: int = 4
    warmup: int = 1000
    draws: int = 1000
    target_accept: float = 0.9
    max_tree_depth: int = 10
    chain_method: str = "parallel"
    svi_restarts: int = 4
    svi_steps: int = 3000
    init_jitter: float = 0.5
    dense_globals: bool = True
    pooled_warmup: bool = True
    adaptive_centring: bool = True
    svi_mass: bool = True
    warmup_tree_depth: int | None = 8
    pool_after: float = 0.7

    def to_dict(self) -> dict:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, d: dict) -> "SamplerConfig":
        """The settings stored with a fit; a fit saved before an option existed ran without it.
        Options this version does not know (a fit from a newer one) are left out with a
        warning: they say how the draws were made, not what they mean."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            warnings.warn(f"the fit's sampler settings have options this version of sloth_bayes "
                          f"does not know, ignored: {unknown}", stacklevel=2)
        return cls(**{"pooled_warmup": False, "adaptive_centring": False, "svi_mass": False,
                      "warmup_tree_depth": None, "pool_after": 0.5,
                      **{k: v for k, v in d.items() if k in known}})


def to_key(seed) -> jax.Array:
    """An int seed or a JAX key -> a JAX key (explicit seeds only: same seed, same draws)."""
    if isinstance(seed, (int, np.integer)):
        return jax.random.PRNGKey(int(seed))
    return seed


def default_progress_bar() -> bool:
    """Progress bars in a terminal/notebook, not in CI or when output is redirected."""
    if os.environ.get("CI"):
        return False
    return bool(getattr(sys.stderr, "isatty", lambda: False)()) or "ipykernel" in sys.modules


def _unconstrained_prototype(model, args: tuple, kwargs: dict) -> dict:
    """Latent sites of ``model`` -> a value in unconstrained space (for shapes only)."""
    from numpyro import handlers
    from numpyro.distributions.transforms import biject_to

    tr = handlers.trace(handlers.seed(model, rng_seed=0)).get_trace(*args, **kwargs)
    return {
        name: biject_to(site["fn"].support).inv(site["value"])
        for name, site in tr.items()
        if site["type"] == "sample" and not site["is_observed"]
    }


def svi_restarts(model, args: tuple, kwargs: dict, keys, steps: int, init_scale: float = 0.05):
    """Mean-field Gaussian fits of ``model``'s posterior in unconstrained space, one per key
    (``vmap``-ed: call it inside ``jax.jit``). Returns ``(loc, scale, loss)``: dicts of
    site -> array with a leading restart axis, and the mean loss of each fit's last steps.

    This is NumPyro's ``AutoNormal`` guide with ``Trace_ELBO`` (one particle, starts uniform
    in (-1, 1) as ``init_to_uniform(radius=1)``, ClippedAdam 0.02), written on the model's
    potential energy: the compiled program is one potential gradient per step, which XLA
    builds in about a third of the time the generic SVI program takes (the fit itself costs
    about a second; its compilation was most of the SVI time).
    """
    from jax.flatten_util import ravel_pytree
    from numpyro.infer.util import potential_energy

    # one flat vector for all sites: a single random draw per step (XLA compiles each
    # separate draw's generator anew, which made the program slow to build)
    flat0, unravel = ravel_pytree(_unconstrained_prototype(model, args, kwargs))
    dim = flat0.shape[0]
    optim = numpyro.optim.ClippedAdam(step_size=0.02, clip_norm=10.0)
    tail = max(1, min(200, steps // 5))
    raw0 = float(np.log(np.expm1(init_scale)))  # softplus^-1 of the starting sd
    entropy_const = 0.5 * (1.0 + np.log(2.0 * np.pi)) * dim

    def loss_fn(params, key):
        loc, raw = params
        scale = jax.nn.softplus(raw)
        z = loc + scale * jax.random.normal(key, (dim,))
        # negative ELBO: E_q[potential] minus the entropy of q
        return potential_energy(model, args, kwargs, unravel(z)) - jnp.sum(jnp.log(scale)) - entropy_const

    def one(key):
        k_loc, k_steps = jax.random.split(key)
        loc = jax.random.uniform(k_loc, (dim,), minval=-1.0, maxval=1.0)

        def step(state, k):
            loss, grad = jax.value_and_grad(loss_fn)(optim.get_params(state), k)
            return optim.update(grad, state), loss

        state0 = optim.init((loc, jnp.full((dim,), raw0)))
        state, losses = jax.lax.scan(step, state0, jax.random.split(k_steps, steps))
        loc, raw = optim.get_params(state)
        # the last steps' mean loss is a steadier criterion than the final step alone
        return unravel(loc), unravel(jax.nn.softplus(raw)), jnp.mean(losses[-tail:])

    return jax.vmap(one)(keys)


def best_restart(loc: dict, scale: dict, losses):
    """The restart with the lowest finite loss: its ``(loc, scale)`` (works traced too)."""
    best = jnp.argmin(jnp.where(jnp.isfinite(losses), losses, jnp.inf))
    return jax.tree.map(lambda a: a[best], loc), jax.tree.map(lambda a: a[best], scale)


def svi_init(data: ModelData, config: ModelConfig, key, restarts: int, steps: int):
    """Best-of-``restarts`` mean-field fits (:func:`svi_restarts`): ``(loc, scale)`` of the
    best and the loss of every restart. The restarts run as one vectorised, compiled kernel."""
    fit = jax.jit(
        lambda keys: svi_restarts(skills_model, (data, config), {"y": data.y}, keys, steps)
    )
    loc, scale, losses = fit(jax.random.split(key, restarts))
    losses = np.asarray(losses)
    if not np.isfinite(losses).any():
        raise RuntimeError("every SVI initialisation diverged; check the data for extreme values")
    loc, scale = best_restart(loc, scale, losses)
    return (loc, scale), [float(v) for v in losses]


def chain_inits(loc: dict, scale: dict, chains: int, jitter: float, key) -> dict:
    """Per-chain unconstrained starting points: the SVI mean plus ``jitter`` SVI sds of noise
    (site -> array with a leading chain axis)."""
    from jax.flatten_util import ravel_pytree

    flat_loc, unravel = ravel_pytree(loc)
    flat_scale, _ = ravel_pytree(scale)
    noise = jax.random.normal(key, (chains, flat_loc.shape[0]))
    return jax.vmap(unravel)(flat_loc + jitter * flat_scale * noise)


class FlatSites:
    """The model's unconstrained sites as (at most) two flat vectors, the state NUTS moves:
    ``"dense"``, the sites of the dense mass block in the given order, and ``"diag"``, the
    other sites (sorted by name), whose mass matrix is diagonal.

    Why: NumPyro's NUTS maps every tree-building and mass-matrix operation over the leaves of
    its state, one small XLA operation per site and step. On the model's 18+ sites that
    bookkeeping cost more than the gradient (a leapfrog step 173 us, 134 us on two flat
    vectors, the gradient alone 55 us). The posterior
    is the same: the flat vectors are a fixed permutation of the sites' values.

    ``flatten`` / ``unflatten`` keep leading batch axes (chains, draws).
    """

    def __init__(self, shapes: dict[str, tuple[int, ...]], dense: Sequence[str] | bool = ()):
        if isinstance(dense, bool):
            dense = tuple(sorted(shapes)) if dense else ()
        missing = [n for n in dense if n not in shapes]
        if missing:
            raise ValueError(f"dense-block sites {missing} are not sites of the model")
        self.shapes = {k: tuple(v) for k, v in shapes.items()}
        self.sizes = {k: int(np.prod(v, dtype=int)) for k, v in self.shapes.items()}
        groups = {"dense": tuple(dense), "diag": tuple(sorted(set(shapes) - set(dense)))}
        self.groups = {g: names for g, names in groups.items() if names}

    @classmethod
    def of_model(cls, model, args: tuple, kwargs: dict, dense: Sequence[str] | bool = ()):
        """The layout of ``model``'s latent sites (shapes from an abstract trace: no op runs)."""
        protos = jax.eval_shape(lambda: _unconstrained_prototype(model, args, kwargs))
        return cls({k: v.shape for k, v in protos.items()}, dense)

    @property
    def dense_mass(self) -> list[tuple[str]] | bool:
        """NumPyro's ``dense_mass`` for the flat state."""
        return [("dense",)] if "dense" in self.groups else False

    def diagonal_inverse_mass(self, scale: dict):
        """NumPyro's inverse mass matrix (the layout of :attr:`dense_mass`) with ``scale``
        (site -> sd, unconstrained) squared on its diagonal, zeros off it."""
        var = {g: jnp.square(v) for g, v in self.flatten(scale).items()}
        if "dense" not in var:
            return var["diag"]
        return {(g,): jnp.diag(v) if g == "dense" else v for g, v in var.items()}

    def flatten(self, sites: dict) -> dict:
        out = {}
        for g, names in self.groups.items():
            first = jnp.asarray(sites[names[0]])
            batch = first.shape[: first.ndim - len(self.shapes[names[0]])]
            out[g] = jnp.concatenate([jnp.reshape(sites[n], batch + (-1,)) for n in names], axis=-1)
        return out

    def unflatten(self, flat: dict) -> dict:
        out = {}
        for g, names in self.groups.items():
            v, at = flat[g], 0
            for n in names:
                out[n] = jnp.reshape(v[..., at : at + self.sizes[n]], v.shape[:-1] + self.shapes[n])
                at += self.sizes[n]
        return out

    def uniform(self, key, radius: float = 2.0) -> dict:
        """A random flat state, uniform in (-radius, radius): NumPyro's ``init_to_uniform``,
        for chains that have no SVI start."""
        keys = jax.random.split(key, len(self.groups))
        return {
            g: jax.random.uniform(k, (sum(self.sizes[n] for n in names),), minval=-radius,
                                  maxval=radius)
            for k, (g, names) in zip(keys, self.groups.items())
        }

    def potential_fn(self, model, args: tuple, kwargs: dict):
        """NUTS's potential on the flat state."""
        from numpyro.infer.util import potential_energy

        return lambda z: potential_energy(model, args, kwargs, self.unflatten(z))

    def postprocess_fn(self, model, args: tuple, kwargs: dict):
        """Flat state -> constrained latent and deterministic sites (what ``MCMC`` returns for
        a model)."""
        from numpyro.infer.util import constrain_fn

        return lambda z: constrain_fn(model, args, kwargs, self.unflatten(z), return_deterministic=True)


#: NumPyro's per-draw NUTS fields that fits keep (``MCMC.run``'s ``extra_fields``).
NUTS_FIELDS = ("diverging", "energy", "num_steps", "potential_energy", "accept_prob")


def nuts_sample_stats(fields: dict) -> dict:
    """ArviZ's sample stats from NumPyro's NUTS fields (:data:`NUTS_FIELDS`), as
    ``az.from_numpyro`` names them: ``n_steps``, ``acceptance_rate``, and ``lp`` the log
    density (the negated potential energy)."""
    names = {"diverging": "diverging", "energy": "energy", "num_steps": "n_steps",
             "accept_prob": "acceptance_rate"}
    stats = {new: fields[old] for old, new in names.items() if old in fields}
    if "potential_energy" in fields:
        stats["lp"] = -fields["potential_energy"]
    return stats


def pooled_inverse_mass(z: dict, dense) -> dict | jax.Array:
    """Inverse mass matrix in NumPyro's layout from unconstrained draws ``z`` (site ->
    (chains, draws, ...)) of all chains together, each centred on its chain's mean. ``dense``
    as NumPyro's ``dense_mass``: ``False`` / ``True``, one diagonal / dense matrix over all
    sites (sorted by name, the order of ``ravel_pytree``), or a list holding one tuple of
    sites: a dense block over them in that order and a diagonal over the rest (sorted).
    Regularised as Stan's (and NumPyro's) adaptation: ``n / (n + 5)`` of the estimate plus
    ``1e-3 * 5 / (n + 5)`` on the diagonal."""
    # each chain's draws about its own mean: what chains differ by (a folded loading's sign,
    # the drift of a chain still settling) is not the posterior's local scale
    flat = {k: (v - v.mean(axis=1, keepdims=True)).reshape(v.shape[0] * v.shape[1], -1)
            for k, v in z.items()}

    def estimate(names, full: bool):
        x = np.concatenate([flat[k] for k in names], axis=1)
        n = x.shape[0]
        est = np.atleast_2d(np.cov(x, rowvar=False)) if full else x.var(axis=0, ddof=1)
        return jnp.asarray(n / (n + 5.0) * est + 1e-3 * 5.0 / (n + 5.0) * (np.eye(len(est)) if full else 1.0))

    if isinstance(dense, bool):
        return estimate(sorted(flat), dense)
    block = tuple(dense[0])
    rest = tuple(sorted(set(flat) - set(block)))
    return {block: estimate(block, True), **({rest: estimate(rest, False)} if rest else {})}


def sample_nuts(model, args: tuple, kwargs: dict, sampler: SamplerConfig, init, key, *, dense,
                progress_bar: bool = False, reparam=None, init_scale=None) -> MCMC:
    """NUTS on ``model`` from unconstrained starts ``init`` (site -> (chains, ...); no chain
    axis for one chain); returns the run ``MCMC``, whose samples are the constrained sites.
    ``dense``: the sites of the dense mass block (a tuple), ``True`` (all) or ``False`` (none).
    NUTS moves the flat state of :class:`FlatSites`.

    With ``sampler.pooled_warmup`` (and 2+ chains, 200+ warm-up iterations: enough to adapt
    twice) the warm-up runs in two parts. In the first (``sampler.pool_after`` of it), each
    chain adapts its own step size and mass matrix, as NumPyro's NUTS does; then one mass
    matrix is estimated from the second half of those draws, all chains together
    (:func:`pooled_inverse_mass`), and kept fixed, and the rest of the warm-up adapts only the
    step size. Why: a chain that happens to crawl through a weakly identified direction during
    warm-up (a small noise scale) estimates too small a variance there, takes steps too short
    for it and keeps crawling while it samples: on the full table one chain's bulk ESS of
    ``sigma_bench[MMLU-PRO]`` was 17 of 1000 draws beside the others' 83-179. Draws of four
    chains (dispersed starts) see that direction better than one chain's.

    ``init_scale`` (site -> sd, unconstrained; e.g. the SVI fit's): the warm-up's first inverse
    mass matrix is its square on the diagonal (NumPyro's default: the identity).

    ``reparam`` (used with the pooled warm-up): ``reparam(draws) -> (args, forward, back)``,
    given the first part's unconstrained draws (site -> (chains, draws, ...)): the model's
    arguments for the rest of the run (the same posterior in other coordinates), the map of
    unconstrained sites into those coordinates (the chains' states and the draws the pooled
    mass is estimated from go through it) and the map of the run's constrained samples back
    to the original ones, so the returned ``MCMC``'s samples read as without ``reparam``.
    """
    layout = FlatSites.of_model(model, args, kwargs, dense)
    potential = layout.potential_fn(model, args, kwargs)

    def mcmc_of(kernel, warmup, draws, postprocess_fn):
        return MCMC(kernel, num_warmup=warmup, num_samples=draws, num_chains=sampler.chains,
                    chain_method=sampler.chain_method, progress_bar=progress_bar,
                    postprocess_fn=postprocess_fn)

    def nuts(inverse_mass_matrix=None, adapt=True):
        return NUTS(
            potential_fn=potential,
            dense_mass=layout.dense_mass,
            target_accept_prob=sampler.target_accept,
            max_tree_depth=(sampler.warmup_tree_depth or sampler.max_tree_depth,  # warm-up, sampling
                            sampler.max_tree_depth),
            inverse_mass_matrix=inverse_mass_matrix,
            adapt_mass_matrix=adapt,
        )

    init = layout.flatten(init)
    warmup = sampler.warmup
    start_mass = None if init_scale is None else layout.diagonal_inverse_mass(init_scale)
    if sampler.pooled_warmup and sampler.chains > 1 and warmup >= 200:
        # warm-up only (no draw is kept), its draws left unconstrained
        own = int(round(warmup * sampler.pool_after))  # iterations each chain adapts alone
        first = mcmc_of(nuts(start_mass), own, 1, postprocess_fn=lambda z: z)
        first.warmup(jax.random.fold_in(key, 1), init_params=init, collect_warmup=True)
        z = first.get_samples(group_by_chain=True)
        z = {k: np.asarray(v)[:, own // 2 :] for k, v in z.items()}
        init = first.last_state.z
        if reparam is not None:
            args, forward, back = reparam(layout.unflatten(z))
            z = {k: np.asarray(v) for k, v in layout.flatten(forward(layout.unflatten(z))).items()}
            init = layout.flatten(forward(layout.unflatten(init)))
            potential = layout.potential_fn(model, args, kwargs)
        kernel, warmup = nuts(pooled_inverse_mass(z, layout.dense_mass), adapt=False), warmup - own
    else:
        # one part: the coordinates never change
        kernel, reparam = nuts(start_mass), None
    post = layout.postprocess_fn(model, args, kwargs)
    postprocess = post if reparam is None else (lambda z: back(post(z)))
    mcmc = mcmc_of(kernel, warmup, sampler.draws, postprocess)
    mcmc.run(key, init_params=init, extra_fields=NUTS_FIELDS)
    return mcmc


def _constrainer(config: ModelConfig, data: ModelData):
    """Unconstrained sites (any leading axes) -> the constrained values :func:`recentre`
    reads (spreads, slopes, the offsets and the ``loadings`` matrix), without running the
    model (an eager run of it costs ~200 small compilations)."""

    def constrain(sites):
        out = {n: sites[n] for n in (*CENTRED_SITES, "slopes")}
        out |= {n: jnp.exp(sites[n]) for n in CENTRED_SITES.values()}
        if not np.any(data.loading_mask == 1.0):  # every benchmark an anchor
            free = jnp.zeros(sites["slopes"].shape[:-2] + (0,))
        else:
            free = sites["loadings_free"]
        return out | {"loadings": loadings_matrix(free, data.loading_mask)}

    return constrain


def run_nuts(data: ModelData, config: ModelConfig, sampler: SamplerConfig, seed, progress_bar=None):
    """Sample the posterior with NUTS from SVI-based starts. Returns (mcmc, info dict)."""
    if sampler.chain_method not in CHAIN_METHODS:
        raise ValueError(f"chain_method must be one of {CHAIN_METHODS}, got {sampler.chain_method!r}")
    key = to_key(seed)
    k_svi, k_init, k_mcmc = jax.random.split(key, 3)
    t0 = time.perf_counter()
    params, losses = svi_init(data, config, k_svi, sampler.svi_restarts, sampler.svi_steps)
    t_svi = time.perf_counter() - t0
    dense = _global_sites(config, data) if sampler.dense_globals else False
    chain_method = sampler.chain_method
    if chain_method == "parallel" and jax.local_device_count() < sampler.chains:
        chain_method = "sequential"  # what NumPyro would do, minus its warning
    init = chain_inits(*params, sampler.chains, sampler.init_jitter, k_init)
    if sampler.chains == 1:
        init = {k: v[0] for k, v in init.items()}
    t1 = time.perf_counter()
    centring = {}

    def recentred(draws):
        # the family offsets' centredness from the first part of the warm-up (pinned_offsets)
        constrain = _constrainer(config, data)
        sites = constrain(draws)
        centring.update({name: centredness(sites[name]) for name in CENTRED_SITES})

        def forward(sites):  # unconstrained sites (any leading axes) -> the new coordinates
            return {**sites, **recentre(constrain(sites), centring, data)}

        return ((data._replace(centring=centring), config), forward,
                lambda s: {**s, **recentre(s, centring, data, inverse=True)})

    mcmc = sample_nuts(
        skills_model, (data, config), {"y": data.y}, replace(sampler, chain_method=chain_method),
        init, k_mcmc, dense=dense,
        progress_bar=default_progress_bar() if progress_bar is None else progress_bar,
        reparam=recentred if sampler.adaptive_centring else None,
        init_scale=params[1] if sampler.svi_mass else None,
    )
    jax.block_until_ready(mcmc.get_samples())
    info = {
        "svi_seconds": t_svi,
        "nuts_seconds": time.perf_counter() - t1,
        "svi_losses": losses,
        "chain_method_used": chain_method,
        "jax_backend": jax.default_backend(),
    }
    if centring:
        info["centring_mean"] = {k: v.mean(axis=0).round(3).tolist() for k, v in centring.items()}
    return mcmc, info


def site_dims() -> dict[str, list[str]]:
    """ArviZ dims of every site: named after what users select on."""
    return {
        "slopes": ["covariate", "skill"],
        "instruct_shift": ["skill"],
        "sigma_sub": ["skill"],
        "sigma_coarse": ["skill"],
        "z_coarse": ["coarse_family", "skill"],
        "alpha_coarse": ["coarse_family", "skill"],
        "z_sub": ["family", "skill"],
        "alpha": ["family", "skill"],
        "tokens_shared": ["tokens_group"],
        "tokens_latent": ["llm_missing_tokens"],
        "tau_slope": ["deviation_covariate"],
        "z_slope": ["coarse_family", "deviation_covariate", "skill"],
        "loadings_free": ["loading_free"],
        "loadings": ["benchmark", "skill"],
        "difficulty": ["benchmark"],
        "sigma_bench": ["benchmark"],
        "sigma_bench_unfolded": ["benchmark"],
        "sigma_logit": ["benchmark"],
        "instruct_bench": ["benchmark"],
        "floor_lift_unfolded": ["lifted_benchmark"],
        "floor_lift": ["benchmark"],
        "log_link_power": [],
        "link_power": [],
        "sigma_family_bench": ["profiled_benchmark"],
        "z_family_bench": ["coarse_family", "profiled_benchmark"],
        "family_profile": ["coarse_family", "benchmark"],
        "tau_saturation": [],
        "saturation_rate_unfolded": ["skill"],
        "saturation_rate": ["skill"],
        "y": ["cell"],
    }


def skill_names(k: int) -> list[str]:
    return [f"skill_{i + 1}" for i in range(k)]


def _tree_layout(data: ModelData, enc: Encoding, config: ModelConfig) -> tuple[dict, dict, dict]:
    """Coordinates, dims and constant data of a fit's DataTree (shared by both builders)."""
    coords = {
        "covariate": list(COVARIATES),
        "deviation_covariate": list(DEVIATION_COVARIATES),
        "skill": skill_names(config.n_skills),
        **({"lifted_benchmark": [enc.benchmarks[j] for j in data.lifted]} if learns_floor(data) else {}),
        "coarse_family": enc.coarse,
        "family": enc.subfamilies,
        "llm": enc.llms,
        "llm_missing_tokens": [enc.llms[i] for i in np.asarray(data.tokens_missing)],
        "tokens_group": token_group_labels(data, enc.llms),
        "benchmark": enc.benchmarks,
        "profiled_benchmark": [enc.benchmarks[j] for j in profiled_benchmarks(data.loading_mask)],
        "loading_free": np.arange(int(np.sum(data.loading_mask == 1.0))),
        "cell": np.arange(len(data.y)),
    }
    constant = {
        "cell_llm": np.asarray(enc.llms, dtype=object)[np.asarray(data.obs_row)].astype(str),
        "cell_benchmark": np.asarray(enc.benchmarks, dtype=object)[np.asarray(data.obs_col)].astype(str),
        "llm_family": np.asarray(enc.subfamilies)[np.asarray(data.sub)],
        "llm_coarse_family": np.asarray(enc.coarse)[np.asarray(data.coarse)],
        "llm_instruct": np.asarray(data.instruct),
        "llm_size_z": np.asarray(data.size_z),
        "llm_tokens_z": np.where(
            np.isin(np.arange(len(enc.llms)), np.asarray(data.tokens_missing)),
            np.nan,
            np.asarray(data.tokens_z),
        ),
    }
    dims = site_dims()
    dims.update(
        {
            "cell_llm": ["cell"],
            "cell_benchmark": ["cell"],
            "llm_family": ["llm"],
            "llm_coarse_family": ["llm"],
            "llm_instruct": ["llm"],
            "llm_size_z": ["llm"],
            "llm_tokens_z": ["llm"],
        }
    )
    return coords, dims, constant


def to_datatree(mcmc: MCMC, data: ModelData, enc: Encoding, config: ModelConfig,
                max_tree_depth: int | None = None):
    """ArviZ DataTree of the fit: posterior, sample stats, log-likelihood per observed cell,
    observed data, and the constant data that forecasting needs (LLM metadata, indices).

    Built from the run's draws by :func:`draws_to_datatree`, not by ``az.from_numpyro``: NUTS
    ran on the flat state's potential (:class:`FlatSites`), so ArviZ would need the model
    handed in, and it then runs the model once eagerly with prior draws only to find the
    observed site: ~200 small XLA compilations (about 10 s of a default fit)."""
    extra = mcmc.get_extra_fields(group_by_chain=True)
    stats = nuts_sample_stats({k: np.asarray(v) for k, v in extra.items()})
    draws = mcmc.get_samples(group_by_chain=True)
    tree = draws_to_datatree(draws, stats, data, enc, config, max_tree_depth=max_tree_depth)
    loglik = numpyro.infer.log_likelihood(skills_model, draws, data, config, y=data.y,
                                          batch_ndims=2)["y"]
    dim = tree["observed_data"]["y"].dims[0]
    tree["log_likelihood"] = xr.Dataset(
        {"y": (("chain", "draw", dim), np.asarray(loglik))},
        coords={d: tree["posterior"][d] for d in ("chain", "draw")} | {dim: tree["observed_data"][dim]},
    )
    return tree


def draws_to_datatree(draws: dict, stats: dict, data: ModelData, enc: Encoding, config: ModelConfig,
                      max_tree_depth: int | None = None):
    """The DataTree of :func:`to_datatree` from draws sampled outside ``MCMC`` (e.g. by
    :class:`~sloth_bayes.sbc.CompiledFitter`): posterior, sample stats, observed data and
    constant data, without the log-likelihood group.

    Parameters
    ----------
    draws : site -> array (chain, draw, ...), latent and deterministic sites.
    stats : per-draw statistics (chain, draw): ``diverging``, ``lp``, ``n_steps``...
        (other entries, not shaped (chain, draw), are ignored).
    data, enc, config : the fitted arrays, their encoding and the model configuration.
    max_tree_depth : the sampler's, if known: adds ``reached_max_tree_depth`` (as ArviZ does).
    """
    coords, dims, constant = _tree_layout(data, enc, config)
    # every LLM's skills are recomputed from the posterior when needed (not stored)
    posterior = {k: np.asarray(v) for k, v in draws.items() if k not in ("y", "skills")}
    shape = next(iter(posterior.values())).shape[:2]
    sample_stats = {
        k: np.asarray(v) for k, v in stats.items() if np.shape(v) == shape and k != "svi_losses"
    }
    if "n_steps" in sample_stats:
        depth = np.log2(np.maximum(sample_stats["n_steps"], 1)).astype(int) + 1
        sample_stats["tree_depth"] = depth
        if max_tree_depth is not None:
            sample_stats["reached_max_tree_depth"] = depth >= max_tree_depth
    present = set(posterior) | {"y"} | set(constant)
    dims = {k: v for k, v in dims.items() if k in present}
    return az.from_dict(
        {
            "posterior": posterior,
            "sample_stats": sample_stats,
            "observed_data": {"y": np.asarray(data.y)},
            "constant_data": constant,
        },
        coords=coords,
        dims=dims,
        attrs={"/": {"inference_library": "numpyro", "inference_library_version": numpyro.__version__}},
    )
