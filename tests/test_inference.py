"""Inference settings that depend on the model configuration."""


import pytest

from sloth_bayes.inference import GLOBAL_SITES, _global_sites
from sloth_bayes.model import ModelConfig


def test_dense_block_drops_sites_of_switched_off_terms():
    assert set(_global_sites(ModelConfig(saturation=True))) == set(GLOBAL_SITES)
    assert "tau_saturation" not in _global_sites(ModelConfig())  # off by default
    assert "floor_lift_unfolded" not in _global_sites(ModelConfig(learned_floors=()))
    assert "sigma_family_bench" not in _global_sites(ModelConfig(family_profile=False))
    reduced = _global_sites(ModelConfig(slope_deviations=False))
    assert "tau_slope" not in reduced
    assert "loadings_free" in reduced


def test_dense_block_sites_are_the_models_own_global_sites():
    """Every dense-block site is sampled by the default model: a renamed site would silently
    fall out of the dense block."""
    from sloth_bayes.inference import _unconstrained_prototype
    from sloth_bayes.model import skills_model
    from sloth_bayes.simulate import prepare_design, synthetic_design

    config = ModelConfig(n_skills=2)
    data = prepare_design(synthetic_design(4, seed=0), config).data
    proto = _unconstrained_prototype(skills_model, (data, config), {"y": None})
    assert set(_global_sites(config, data)) <= set(proto)


def test_mean_field_fit_recovers_a_known_gaussian_posterior():
    """The SVI start is the exact mean-field optimum when the posterior is Gaussian in the
    unconstrained space: a normal, and a log-normal (a positive site, fitted on its log)."""
    import jax
    import numpy as np
    import numpyro
    import numpyro.distributions as dist

    from sloth_bayes.inference import best_restart, chain_inits, svi_restarts

    def model():
        numpyro.sample("x", dist.Normal(1.0, 2.0).expand([3]).to_event(1))
        numpyro.sample("s", dist.LogNormal(0.5, 0.3))

    fit = jax.jit(lambda keys: svi_restarts(model, (), {}, keys, 4000))
    loc, scale, losses = fit(jax.random.split(jax.random.PRNGKey(0), 2))
    assert loc["x"].shape == (2, 3) and np.all(np.isfinite(np.asarray(losses)))
    loc, scale = best_restart(loc, scale, losses)
    np.testing.assert_allclose(loc["x"], 1.0, atol=0.25)
    np.testing.assert_allclose(scale["x"], 2.0, rtol=0.15)
    np.testing.assert_allclose(loc["s"], 0.5, atol=0.05)  # log space
    np.testing.assert_allclose(scale["s"], 0.3, rtol=0.15)
    # every chain starts from its own draw around the fit; the same key, the same starts
    a = chain_inits(loc, scale, 4, 0.5, jax.random.PRNGKey(1))
    b = chain_inits(loc, scale, 4, 0.5, jax.random.PRNGKey(1))
    assert a["x"].shape == (4, 3) and len(np.unique(np.asarray(a["s"]))) == 4
    np.testing.assert_array_equal(np.asarray(a["x"]), np.asarray(b["x"]))


def test_pooled_inverse_mass_has_numpyro_block_layout_and_the_draws_covariance():
    """Known answer: draws with a known covariance give it back, a dense block over the
    named sites in their order, a diagonal over the rest sorted by name."""
    import numpy as np

    from sloth_bayes.inference import pooled_inverse_mass

    rng = np.random.default_rng(0)
    cov = np.array([[4.0, 1.6, 0.0], [1.6, 1.0, -0.2], [0.0, -0.2, 0.25]])
    x = rng.multivariate_normal(np.zeros(3), cov, size=(4, 5000))  # (chains, draws, 3)
    z = {"b": x[..., :2], "a": x[..., 2], "d": 3.0 * rng.normal(size=(4, 5000, 2)),
         "c": 0.1 * rng.normal(size=(4, 5000))}
    inv = pooled_inverse_mass(z, [("b", "a")])
    assert list(inv) == [("b", "a"), ("c", "d")]
    np.testing.assert_allclose(np.asarray(inv[("b", "a")]), cov, atol=0.08)
    np.testing.assert_allclose(np.asarray(inv[("c", "d")]), [0.01, 9.0, 9.0], rtol=0.05)
    flat = pooled_inverse_mass(z, False)  # one diagonal, sites in sorted order (ravel_pytree)
    full = np.asarray(pooled_inverse_mass(z, True))  # one dense matrix, the same order
    np.testing.assert_allclose(np.diag(full), np.asarray(flat), rtol=1e-5)
    np.testing.assert_allclose(full[1, 2], 1.6, atol=0.08)
    np.testing.assert_allclose(np.asarray(flat), [0.25, 4.0, 1.0, 0.01, 9.0, 9.0], rtol=0.05)
    # chains that sit apart (a folded loading's two signs: raw values near +1 in two chains,
    # near -1 in the others) give each chain's own spread, not the distance between chains
    signs = np.array([1.0, 1.0, -1.0, -1.0])[:, None, None]
    apart = {"x": signs + 0.1 * rng.normal(size=(4, 5000, 1))}
    np.testing.assert_allclose(np.asarray(pooled_inverse_mass(apart, False)), [0.01], rtol=0.05)


def test_pooled_warmup_samples_a_correlated_gaussian_with_its_pooled_mass_matrix():
    """Two-stage warm-up on a posterior with known answers: the fixed mass matrix of the
    second half is the posterior covariance (scales 10 and 0.1, correlation 0.9), the draws
    have the right moments, and the same key gives the same draws."""
    import jax
    import numpy as np
    import numpyro
    import numpyro.distributions as dist

    from sloth_bayes.inference import SamplerConfig, sample_nuts

    cov = np.array([[100.0, 0.9], [0.9, 0.01]])

    def model():
        numpyro.sample("x", dist.MultivariateNormal(np.array([1.0, -1.0]), cov))
        numpyro.sample("s", dist.LogNormal(0.0, 0.5))

    sampler = SamplerConfig(chains=2, warmup=400, draws=1000, chain_method="sequential")
    init = {"x": np.zeros((2, 2)), "s": np.zeros(2)}
    run = lambda: sample_nuts(model, (), {}, sampler, init, jax.random.PRNGKey(3), dense=("x",))
    mcmc = run()
    inv = mcmc.last_state.adapt_state.inverse_mass_matrix  # on the flat state: x dense, s diagonal
    np.testing.assert_array_equal(*np.asarray(inv[("dense",)]))  # one matrix for both chains
    np.testing.assert_allclose(np.asarray(inv[("dense",)])[0], cov, rtol=0.35, atol=0.01)
    np.testing.assert_allclose(np.asarray(inv[("diag",)])[0], [0.25], rtol=0.35)
    x = np.asarray(mcmc.get_samples()["x"])
    assert abs(x[:, 0].mean() - 1.0) < 1.5 and abs(x[:, 1].mean() + 1.0) < 0.015
    np.testing.assert_allclose(np.cov(x, rowvar=False), cov, rtol=0.2, atol=0.002)
    np.testing.assert_array_equal(x, np.asarray(run().get_samples()["x"]))
    off = sample_nuts(model, (), {}, SamplerConfig(chains=2, warmup=400, draws=10, pooled_warmup=False,
                                                   chain_method="sequential"),
                      init, jax.random.PRNGKey(3), dense=("x",))
    # without pooling each chain keeps the matrix it adapted: the two differ
    own = np.asarray(off.last_state.adapt_state.inverse_mass_matrix[("dense",)])
    assert not np.allclose(own[0], own[1])


def test_a_reparameterisation_at_the_pooled_warmup_keeps_the_draws_in_the_original_coordinates():
    """``sample_nuts(..., reparam=...)``: after the first half of the warm-up the chains move
    in new coordinates (here ``w = 2 x + 1``, a model of ``w``), the pooled mass is
    estimated there (variance 4), and the returned draws read as ``x`` again (mean 0, sd 1).
    The hook gets the first half's draws of every chain."""
    import jax
    import numpy as np
    import numpyro
    import numpyro.distributions as dist

    from sloth_bayes.inference import SamplerConfig, sample_nuts

    def model(loc=0.0, scale=1.0):
        numpyro.sample("x", dist.Normal(loc, scale))

    seen = {}

    def reparam(draws):
        seen["shape"] = np.shape(draws["x"])
        return (1.0, 2.0), lambda s: {"x": 2.0 * s["x"] + 1.0}, lambda s: {"x": (s["x"] - 1.0) / 2.0}

    sampler = SamplerConfig(chains=2, warmup=400, draws=2000, chain_method="sequential")
    mcmc = sample_nuts(model, (), {}, sampler, {"x": np.zeros(2)}, jax.random.PRNGKey(0), dense=False,
                       reparam=reparam)
    assert seen["shape"] == (2, 140)  # the last half of the per-chain part (0.7 of 400), 2 chains
    inv = np.ravel(mcmc.last_state.adapt_state.inverse_mass_matrix)  # one diagonal entry per chain
    np.testing.assert_allclose(inv, 4.0, rtol=0.4)
    x = np.asarray(mcmc.get_samples()["x"])
    assert abs(x.mean()) < 0.1 and abs(x.std() - 1.0) < 0.08


def test_flat_sites_round_trip_and_keep_the_models_potential():
    """The flat state NUTS moves is the sites' values rearranged: flatten / unflatten invert
    each other with and without batch axes (chains, draws), the dense block holds its sites
    in the given order, and the potential on the flat state is NumPyro's on the sites."""
    import jax
    import numpy as np
    import numpyro
    import numpyro.distributions as dist
    from numpyro.infer.util import potential_energy

    from sloth_bayes.inference import FlatSites

    def model():
        numpyro.sample("a", dist.Normal(0.0, 1.0).expand([2, 3]))
        numpyro.sample("b", dist.HalfNormal(1.0))
        numpyro.sample("c", dist.Normal(0.0, 2.0).expand([4]))
        numpyro.sample("y", dist.Normal(0.0, 1.0), obs=0.3)

    layout = FlatSites.of_model(model, (), {}, dense=("c", "b"))
    assert layout.groups == {"dense": ("c", "b"), "diag": ("a",)}
    assert layout.dense_mass == [("dense",)]
    rng = np.random.default_rng(0)
    sites = {"a": rng.normal(size=(3, 5, 2, 3)), "b": rng.normal(size=(3, 5)), "c": rng.normal(size=(3, 5, 4))}
    flat = layout.flatten(sites)
    assert flat["dense"].shape == (3, 5, 5) and flat["diag"].shape == (3, 5, 6)
    np.testing.assert_allclose(np.asarray(flat["dense"][..., 4]), sites["b"], rtol=1e-6)
    back = layout.unflatten(flat)
    for k in sites:
        np.testing.assert_allclose(np.asarray(back[k]), sites[k], rtol=1e-6)
    one = {k: v[1, 2] for k, v in sites.items()}
    np.testing.assert_allclose(
        float(layout.potential_fn(model, (), {})(layout.flatten(one))),
        float(potential_energy(model, (), {}, one)), rtol=1e-6)
    post = layout.postprocess_fn(model, (), {})(layout.flatten(one))
    np.testing.assert_allclose(float(post["b"]), np.exp(one["b"]), rtol=1e-6)  # constrained
    assert FlatSites.of_model(model, (), {}, dense=False).dense_mass is False
    assert FlatSites.of_model(model, (), {}, dense=True).groups == {"dense": ("a", "b", "c")}


def test_the_warmup_starts_from_the_given_scales_as_its_mass_matrix():
    """``sample_nuts(..., init_scale=...)``: the first inverse mass matrix is the scales
    squared on the diagonal, in the flat state's layout (dense block, then the rest). With a
    warm-up too short for any mass adaptation window it is still the one the run ends with;
    sampling from it recovers a target whose scales differ by 10^4."""
    import jax
    import numpy as np
    import numpyro
    import numpyro.distributions as dist

    from sloth_bayes.inference import FlatSites, SamplerConfig, sample_nuts

    def model():
        numpyro.sample("a", dist.Normal(0.0, 100.0).expand([2]))
        numpyro.sample("b", dist.Normal(0.0, 0.01))
        numpyro.sample("c", dist.Normal(0.0, 1.0).expand([3]))

    scale = {"a": np.array([100.0, 100.0]), "b": np.array(0.01), "c": np.ones(3)}
    layout = FlatSites.of_model(model, (), {}, dense=("b", "a"))
    inv = layout.diagonal_inverse_mass(scale)
    np.testing.assert_allclose(np.asarray(inv[("dense",)]), np.diag([1e-4, 1e4, 1e4]), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(inv[("diag",)]), np.ones(3))
    np.testing.assert_allclose(np.asarray(FlatSites.of_model(model, (), {}).diagonal_inverse_mass(scale)),
                               [1e4, 1e4, 1e-4, 1, 1, 1], rtol=1e-6)  # no dense block: sorted sites

    init = {"a": np.zeros(2), "b": np.zeros(()), "c": np.zeros(3)}
    sampler = SamplerConfig(chains=1, warmup=10, draws=2000, chain_method="sequential")
    mcmc = sample_nuts(model, (), {}, sampler, init, jax.random.PRNGKey(0), dense=("b", "a"), init_scale=scale)
    end = mcmc.last_state.adapt_state.inverse_mass_matrix
    np.testing.assert_allclose(np.asarray(end[("dense",)]), np.asarray(inv[("dense",)]), rtol=1e-6)
    draws = mcmc.get_samples()
    np.testing.assert_allclose(np.asarray(draws["a"]).std(0), 100.0, rtol=0.1)
    np.testing.assert_allclose(np.asarray(draws["b"]).std(), 0.01, rtol=0.1)


def test_sampler_settings_round_trip_and_old_fits_read_as_unpooled():
    from sloth_bayes.inference import SamplerConfig

    s = SamplerConfig(chains=3, pooled_warmup=True)
    assert SamplerConfig.from_dict(s.to_dict()) == s
    old = {k: v for k, v in SamplerConfig().to_dict().items() if k != "pooled_warmup"}
    assert SamplerConfig.from_dict(old).pooled_warmup is False  # saved before the option
    old = {k: v for k, v in SamplerConfig().to_dict().items() if k != "adaptive_centring"}
    assert SamplerConfig.from_dict(old).adaptive_centring is False
    old = {k: v for k, v in SamplerConfig().to_dict().items()
           if k not in ("svi_mass", "warmup_tree_depth", "pool_after")}
    before = SamplerConfig.from_dict(old)  # saved before these options: identity start, no cap, halves
    assert (before.svi_mass, before.warmup_tree_depth, before.pool_after) == (False, None, 0.5)


def test_sampler_settings_of_a_newer_version_load_with_a_warning_naming_the_option():
    """A fit saved by a version with a sampler option this one lacks still forecasts: the
    option is named in a warning and left out; the known settings are kept."""
    import pytest

    from sloth_bayes.inference import SamplerConfig

    newer = {**SamplerConfig(chains=3).to_dict(), "pooled_rounds": 2}
    with pytest.warns(UserWarning, match="pooled_rounds"):
        s = SamplerConfig.from_dict(newer)
    assert s == SamplerConfig(chains=3)


@pytest.mark.parametrize("option", [{}, {"slope_deviations": False}])
def test_the_recentring_constrainer_is_numpyros_constrain_fn(option):
    """The adaptive centring maps the warm-up's unconstrained draws without running the
    model; what it reads (spreads, slopes, offsets, the loadings matrix) must be what
    NumPyro's ``constrain_fn`` gives."""
    import jax
    import numpy as np
    from numpyro.infer.util import constrain_fn

    from sloth_bayes.inference import _constrainer, _unconstrained_prototype
    from sloth_bayes.model import ModelConfig, skills_model
    from sloth_bayes.simulate import prepare_design, synthetic_design

    config = ModelConfig(n_skills=2, **option)
    data = prepare_design(synthetic_design(4, seed=0), config).data
    proto = _unconstrained_prototype(skills_model, (data, config), {"y": None})
    rng = np.random.default_rng(0)
    sites = {k: rng.normal(size=np.shape(v)).astype(np.float32) for k, v in proto.items()}
    want = constrain_fn(skills_model, (data, config), {"y": None}, sites, return_deterministic=True)
    got = _constrainer(config, data)(sites)
    for k, v in got.items():
        np.testing.assert_allclose(v, want[k], rtol=1e-6, err_msg=k)
    batched = _constrainer(config, data)(jax.tree.map(lambda v: np.stack([v, v]), sites))
    np.testing.assert_allclose(batched["loadings"][1], want["loadings"], rtol=1e-6)
