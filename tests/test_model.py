"""The model's pieces on cases with known answers."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from sloth_bayes.model import benchmark_mean, observation_sd


def test_logit_noise_is_the_delta_method_of_a_logit_offset():
    """With only the logit-scale term, the noise sd is ``sigma_logit`` times d score / d logit:
    what a normal offset of the logit does to the score, to first order."""
    floor, sigma_logit = 0.25, 0.4
    for logit in (-6.0, -1.0, 0.0, 2.5):

        def score(t):
            return benchmark_mean(jnp.reshape(t, (1, 1)), jnp.ones((1, 1)), jnp.zeros(1), floor)[0, 0]

        mu = score(jnp.float32(logit))
        slope = jax.grad(score)(jnp.float32(logit))
        sd = observation_sd(mu, 0.0, 0.0, floor, sigma_logit)
        np.testing.assert_allclose(sd, sigma_logit * slope, rtol=1e-4)


def test_logit_noise_vanishes_at_the_floor_and_the_ceiling():
    mu = jnp.array([0.25, 1.0])
    np.testing.assert_allclose(observation_sd(mu, 0.0, 0.0, 0.25, 0.5), 0.0, atol=1e-7)
    # the binomial and the additive terms are unchanged by it
    mu = jnp.array([0.25, 0.6])
    old = jnp.sqrt(mu * (1 - mu) / 1000 + 0.02**2)
    np.testing.assert_allclose(observation_sd(mu, 1e-3, 0.02), old, rtol=1e-6)
    assert float(observation_sd(mu, 1e-3, 0.02, 0.25, 0.5)[1]) > float(old[1])


def test_a_config_saved_before_the_logit_noise_reads_back_without_it():
    from sloth_bayes.model import ModelConfig

    old = ModelConfig().to_dict()
    old.pop("logit_noise")
    assert ModelConfig.from_dict(old).logit_noise is False
    assert ModelConfig.from_dict(ModelConfig().to_dict()) == ModelConfig()
