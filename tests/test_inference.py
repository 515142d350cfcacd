"""Inference settings that depend on the model configuration."""

from dataclasses import replace

from sloth_bayes.inference import GLOBAL_SITES, _global_sites
from sloth_bayes.model import ModelConfig


def test_dense_block_drops_sites_of_switched_off_terms():
    everything = ModelConfig(
        llm_residual=True, family_bench="nested", instruct_bench=True, size_curvature=True,
        instruct_noise=True,
    )
    # one of the two parameterisations of the free loadings: their sampled site
    assert set(GLOBAL_SITES) - set(_global_sites(everything)) == {"loadings_free"}
    log_space = replace(everything, folded_loadings=False)
    assert set(GLOBAL_SITES) - set(_global_sites(log_space)) == {"loadings_unfolded"}
    assert "size_curvature" not in _global_sites(ModelConfig(size_curvature=False))
    assert "instruct_noise" not in _global_sites(ModelConfig())
    assert "instruct_noise" not in _global_sites(ModelConfig(instruct_noise=True, logit_noise=False))
    assert "sigma_sub_bench" not in _global_sites(ModelConfig(family_bench="coarse"))
    reduced = _global_sites(ModelConfig(slope_deviations=False, llm_residual=False))
    assert "tau_slope" not in reduced and "sigma_llm" not in reduced
    assert "loadings_unfolded" in reduced


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
