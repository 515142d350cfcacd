"""The model's pieces on cases with known answers."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sloth_bayes.model import benchmark_mean, observation_sd


@pytest.mark.parametrize("power", [1.0, 0.5, 3.0])
def test_logit_noise_is_the_delta_method_of_a_logit_offset(power):
    """With only the logit-scale term, the noise sd is ``sigma_logit`` times d score / d logit:
    what a normal offset of the logit does to the score, to first order (for the logistic
    link and for its powers, ``ModelConfig.link_power``)."""
    floor, sigma_logit = 0.25, 0.4
    # (a cube's lower tail is below float32's resolution of a score at -6 logits)
    for logit in (-6.0 if power <= 1.0 else -1.5, -1.0, 0.0, 2.5):

        def score(t):
            theta = jnp.reshape(t, (1, 1))
            return benchmark_mean(theta, jnp.ones((1, 1)), jnp.zeros(1), floor, power=power)[0, 0]

        mu = score(jnp.float32(logit))
        slope = jax.grad(score)(jnp.float32(logit))
        sd = observation_sd(mu, 0.0, 0.0, floor, sigma_logit, power)
        np.testing.assert_allclose(sd, sigma_logit * slope, rtol=1e-4)
        # the model's path: the slope from the logit itself, not rebuilt from the score
        sd_logit = observation_sd(mu, 0.0, 0.0, floor, sigma_logit, power, logit=jnp.float32(logit))
        np.testing.assert_allclose(sd_logit, sigma_logit * slope, rtol=1e-4)


def test_a_link_power_above_one_reaches_the_floor_sooner_and_keeps_the_ceiling():
    """``sigmoid(x) ** power``: the logistic at power 1; at power 3 a score far below the
    difficulty is 3 times as many logits from the floor, while near the ceiling the
    two links agree."""
    from sloth_bayes.model import link

    x = jnp.array([-8.0, -6.0, 0.0, 9.0])
    np.testing.assert_allclose(link(x), jax.nn.sigmoid(x), rtol=1e-3)
    cubed = link(x, 3.0)
    np.testing.assert_allclose(cubed, jax.nn.sigmoid(x) ** 3, rtol=1e-4)
    # log g falls 3x as fast in the lower tail: log g(-8) - log g(-6) ~ 3 * (-2)
    np.testing.assert_allclose(jnp.log(cubed[0]) - jnp.log(cubed[1]), -6.0, atol=0.01)
    np.testing.assert_allclose(cubed[3], link(x)[3], atol=1e-3)


def test_logit_noise_vanishes_at_the_floor_and_the_ceiling():
    mu = jnp.array([0.25, 1.0])
    np.testing.assert_allclose(observation_sd(mu, 0.0, 0.0, 0.25, 0.5), 0.0, atol=1e-7)
    # the binomial and the additive terms are unchanged by it
    mu = jnp.array([0.25, 0.6])
    old = jnp.sqrt(mu * (1 - mu) / 1000 + 0.02**2)
    np.testing.assert_allclose(observation_sd(mu, 1e-3, 0.02), old, rtol=1e-6)
    assert float(observation_sd(mu, 1e-3, 0.02, 0.25, 0.5)[1]) > float(old[1])


def test_a_rounded_score_is_read_as_the_interval_it_was_rounded_from():
    """``half_step``: a recorded 0 is ``P(Y < h)``, a recorded 1 is ``P(Y > 1 - h)`` and an
    interior value is the interval probability over its step (per unit of score: the
    density of the score plus a uniform rounding error), against SciPy; ``half_step=0``
    is the exact-score likelihood; the costly-CDF path (``boundary``) agrees with the
    general one, and its gradient is finite."""
    from scipy import stats

    from sloth_bayes.model import CensoredNormal

    loc = np.array([0.003, 0.3, 0.98, 0.01, 0.5], dtype=np.float32)
    scale = np.array([0.009, 0.02, 0.01, 0.006, 0.03], dtype=np.float32)
    value = np.array([0.0, 0.31, 1.0, 0.01, 0.47], dtype=np.float32)
    h = 0.005
    lo, hi = value - h, value + h
    expect = np.log((stats.norm.cdf((hi - loc) / scale) - stats.norm.cdf((lo - loc) / scale)) / (2 * h))
    expect[0] = stats.norm.logcdf((h - loc[0]) / scale[0])
    expect[2] = stats.norm.logsf((1 - h - loc[2]) / scale[2])
    for boundary in (None, jnp.array([0, 2])):
        got = CensoredNormal(jnp.asarray(loc), jnp.asarray(scale), boundary=boundary, half_step=h).log_prob(value)
        # Sheppard's correction: exact to O((h / scale)^4), 0.006 where the step is 1.7 sd wide
        np.testing.assert_allclose(got, expect, atol=1e-2)
        np.testing.assert_allclose(np.asarray(got)[[0, 1, 2, 4]], expect[[0, 1, 2, 4]], atol=1e-4)
    exact = CensoredNormal(jnp.asarray(loc), jnp.asarray(scale)).log_prob(value)
    np.testing.assert_allclose(np.asarray(exact)[[1, 4]], stats.norm.logpdf(value[[1, 4]], loc[[1, 4]], scale[[1, 4]]), rtol=1e-5)
    np.testing.assert_allclose(exact[0], stats.norm.logcdf(-loc[0] / scale[0]), rtol=1e-5)
    grad = jax.grad(
        lambda m: CensoredNormal(m, jnp.asarray(scale), boundary=jnp.array([0, 2]), half_step=h).log_prob(value).sum()
    )(jnp.asarray(loc))
    assert np.all(np.isfinite(grad))


def test_gamma_scale_prior_has_the_stated_mean_and_no_mass_at_zero():
    """``spread_prior(s)``: mean ``s`` and a density that vanishes at 0 (so a spread near 0
    is not a funnel's neck)."""
    from sloth_bayes.model import spread_prior

    gamma = spread_prior(0.3)
    draws = gamma.sample(jax.random.PRNGKey(0), (200_000,))
    np.testing.assert_allclose(float(draws.mean()), 0.3, rtol=0.01)
    near_zero, at_mean = gamma.log_prob(jnp.array([1e-6, 0.3]))
    assert float(near_zero) < float(at_mean) - 10.0


def test_family_profiles_leave_the_anchors_to_the_skills():
    """The anchors carry no family profile (the skills are their family offsets)."""
    from sloth_bayes.model import anchor_rows, loading_mask, profiled_benchmarks

    mask = loading_mask(["MMLU", "ARC", "GSM8K", "BBH"], ["MMLU", "GSM8K"], 2)
    np.testing.assert_array_equal(anchor_rows(mask), [1.0, 0.0, 1.0, 0.0])
    np.testing.assert_array_equal(profiled_benchmarks(mask), [1, 3])


def test_a_config_with_unknown_options_is_refused_by_name():
    import pytest

    from sloth_bayes.model import ModelConfig

    stored = dict(ModelConfig().to_dict(), warp_drive=True)
    with pytest.raises(ValueError, match="warp_drive"):
        ModelConfig.from_dict(stored)
    stored = ModelConfig().to_dict()
    stored["priors"]["cauchy_scale"] = 1.0
    with pytest.raises(ValueError, match="cauchy_scale"):
        ModelConfig.from_dict(stored)
    with pytest.raises(ValueError, match="learned_floors"):
        ModelConfig(learned_floors=True)  # a tuple of answer kinds, not a switch
    assert ModelConfig.from_dict(ModelConfig(n_skills=3).to_dict()) == ModelConfig(n_skills=3)


def test_options_from_the_command_line_set_choices_and_prior_scales():
    from sloth_bayes.model import ModelConfig

    config = ModelConfig.from_options(["sub=0.3", "n_skills=2", "anchors=MMLU,BBH", "efficiency_df=none",
                                       "family_profile=false", "learned_floors=choice, rules"])
    assert config.n_skills == 2 and config.anchors == ("MMLU", "BBH") and not config.family_profile
    assert config.priors.sub == 0.3 and config.priors.efficiency_df is None
    assert config.learned_floors == ("choice", "rules")
    assert ModelConfig.from_options(["learned_floors=none"]).learned_floors == ()
    for bad, name in (("warp=1", "warp"), ("sub=abc", "sub"), ("family_profile=maybe", "family_profile"),
                      ("learned_floors=guess", "learned_floors"), ("sub", "NAME=VALUE")):
        with pytest.raises(ValueError, match=name):
            ModelConfig.from_options([bad])


def test_deviation_distance_is_linear_near_the_pivot_and_a_square_root_far():
    """``deviation_distance``: the identity without a knee; with knee ``c`` it is odd, ~``d``
    for ``|d| << c``, ~``sqrt(c |d|)`` for ``|d| >> c``, and exactly ``d / 2**0.25`` at c."""
    from sloth_bayes.model import deviation_distance, deviation_term

    d = np.array([-1e4, -1.0, -1e-3, 0.0, 1e-3, 1.0, 1e4])
    np.testing.assert_array_equal(deviation_distance(d), d)
    h = deviation_distance(d, 1.0)
    np.testing.assert_allclose(h, -h[::-1])
    np.testing.assert_allclose(h[[2, 4]], d[[2, 4]], rtol=1e-6)
    np.testing.assert_allclose(h[[0, 6]], [-100.0, 100.0], rtol=1e-6)
    np.testing.assert_allclose(h[5], 2**-0.25)
    np.testing.assert_allclose(deviation_distance(np.array([9.0]), 4.0), 9.0 / (1 + 81 / 16) ** 0.25)
    # with a family range [low, high]: the identity inside, the edge plus the tempered
    # excess outside, continuous with slope 1 at the edges
    d = np.array([-3.0, -0.5 - 1e-6, -0.5, 0.2, 1.5, 1.5 + 1e-6, 5.0])
    h = deviation_distance(d, 1.0, -0.5, 1.5)
    np.testing.assert_allclose(h[2:5], d[2:5])
    np.testing.assert_allclose(h[[1, 5]], d[[1, 5]], atol=1e-9)
    np.testing.assert_allclose(h[0], -0.5 + deviation_distance(np.array(-2.5), 1.0))
    np.testing.assert_allclose(h[6], 1.5 + deviation_distance(np.array(3.5), 1.0))
    # the term applies it per covariate distance
    dx, dev = np.array([[4.0, -1.0, 0.5]]), np.ones((1, 3, 2))
    np.testing.assert_allclose(deviation_term(dx, dev, 1.0), deviation_distance(dx, 1.0).sum(-1, keepdims=True) * np.ones((1, 2)))


def test_deviation_term_uses_only_the_covariates_that_deviate():
    """``deviation_term``: with D = 3 it is ``dx @ dev``; with D = 2 (no interaction
    deviation) the interaction's distance is ignored, whatever it is."""
    from sloth_bayes.model import deviation_term

    rng = np.random.default_rng(2)
    dx = rng.standard_normal((5, 3))  # 5 LLMs' distances from their family's pivot
    dev3 = rng.standard_normal((5, 3, 2))
    np.testing.assert_allclose(deviation_term(dx, dev3), np.einsum("nc,nck->nk", dx, dev3), rtol=1e-6)
    dev2 = dev3[:, :2]
    far = dx.copy()
    far[:, 2] += 100.0
    np.testing.assert_allclose(deviation_term(far, dev2), np.einsum("nc,nck->nk", dx[:, :2], dev2), rtol=1e-6)


def test_the_default_learns_only_the_floor_no_chance_level_exists_for_and_one_link_power():
    """By default only IFEval (rule checks: no computable chance level) gets a learned floor;
    a table without it has no ``floor_lift`` site at all (the model is the plain one), and
    a lifted floor enters the mean through the trace's ``floor_lift`` of shape (J,). The
    default link has one power shared by all benchmarks."""
    import numpyro
    import pandas as pd

    from sloth_bayes.data import validate_table
    from sloth_bayes.model import ModelConfig, encode, make_encoding, skills_model

    rng = np.random.default_rng(0)
    names = ["MMLU", "GSM8K", "IFEval", "BBH"]
    n = 8
    table = pd.DataFrame(
        {
            "Model": [f"m{i}" for i in range(n)],
            "Family": ["a"] * 4 + ["b"] * 4,
            "Family2": ["a"] * 4 + ["b"] * 4,
            "Instruct": [False] * n,
            "#Params (B)": [1.0, 2.0, 4.0, 8.0] * 2,
            "Pretraining Data Size (T)": [1.0] * n,
            **{b: rng.uniform(0.3, 0.6, n) for b in names},
        }
    )

    def sites(columns, config):
        t, meta = validate_table(table.drop(columns=[b for b in names if b not in columns]))
        enc = make_encoding(t, meta, config)
        data = encode(t, enc, config.n_skills)
        tr = numpyro.handlers.trace(numpyro.handlers.seed(skills_model, 0)).get_trace(data, config)
        return enc, tr

    config = ModelConfig(n_skills=2)
    assert config.learned_floors == ("rules",)
    enc, tr = sites(names, config)
    assert enc.floor_learned == [False, False, True, False]
    assert tr["floor_lift_unfolded"]["value"].shape == (1,)
    lift = np.asarray(tr["floor_lift"]["value"])
    assert lift.shape == (4,) and lift[2] > 0 and np.all(lift[[0, 1, 3]] == 0)
    _, plain = sites(["MMLU", "GSM8K", "BBH"], config)
    assert "floor_lift" not in plain and "floor_lift_unfolded" not in plain
    _, off = sites(names, ModelConfig(n_skills=2, learned_floors=()))
    assert "floor_lift" not in off
    assert tr["link_power"]["value"].shape == () and float(tr["link_power"]["value"]) > 0


def test_student_t_efficiencies_give_coarse_families_heavy_tails():
    """``efficiency_df``: with the skills' spreads fixed at 1, prior draws of the coarse
    families' efficiencies are centred Student-t draws with that many degrees of freedom
    (two-sample KS against NumPy's); with ``efficiency_df=None`` centred normals, not those."""
    from scipy.stats import ks_2samp

    from sloth_bayes.model import ModelConfig
    from sloth_bayes.simulate import draw_prior, prepare_design

    rng = np.random.default_rng(5)
    n, c = 3000, 6
    centred = lambda z: (z - z.mean(axis=1, keepdims=True)).ravel()
    want_t = centred(rng.standard_t(3.0, (n, c)))
    want_normal = centred(rng.standard_normal((n, c)))
    for config, want, other in (
        (ModelConfig(n_skills=1).with_options(efficiency_df=3.0), want_t, want_normal),
        (ModelConfig(n_skills=1).with_options(efficiency_df=None), want_normal, want_t),
    ):
        design = prepare_design(None, config, seed=1, n_families=c)
        alpha = draw_prior(design, n, seed=0, params={"sigma_coarse": np.ones(1)})["alpha_coarse"]
        got = np.asarray(alpha)[:, :, 0].ravel()
        assert ks_2samp(got, want).pvalue > 0.01, config.priors.efficiency_df
        assert ks_2samp(got, other).pvalue < 1e-4, config.priors.efficiency_df


def test_a_benchmark_recorded_in_whole_percents_is_read_as_rounded():
    """The encoding keeps each benchmark's rounding step (found in the training table); the
    likelihood gives that benchmark's cells half the step, the exact benchmark's none."""
    import numpyro
    import pandas as pd

    from sloth_bayes.data import validate_table
    from sloth_bayes.model import ModelConfig, encode, make_encoding, skills_model

    rng = np.random.default_rng(1)
    n = 8
    table = pd.DataFrame(
        {
            "Model": [f"m{i}" for i in range(n)],
            "Family": ["a"] * 4 + ["b"] * 4,
            "Family2": ["a"] * 4 + ["b"] * 4,
            "Instruct": [False] * n,
            "#Params (B)": [1.0, 2.0, 4.0, 8.0] * 2,
            "Pretraining Data Size (T)": [1.0] * n,
            "MMLU": rng.uniform(0.3, 0.6, n),
            "MATH Lvl 5": np.round(rng.uniform(0.0, 0.03, n), 2),
        }
    )
    t, meta = validate_table(table)

    def half_steps(config):
        enc = make_encoding(t, meta, config)
        data = encode(t, enc, config.n_skills)
        tr = numpyro.handlers.trace(numpyro.handlers.seed(skills_model, 0)).get_trace(data, config, y=data.y)
        return enc, data, np.broadcast_to(np.asarray(tr["y"]["fn"].half_step), data.y.shape)

    enc, data, h = half_steps(ModelConfig(n_skills=1))
    assert enc.score_step == [0.0, 0.01]
    np.testing.assert_allclose(h, np.where(np.asarray(data.obs_col) == 1, 0.005, 0.0))


def _two_families(config, sizes=(1.0, 2.0, 4.0) * 2, tokens=(1.0,) * 6, seed=0, subs=None):
    """Model data of a toy table: two families of three LLMs (sub-families ``subs``, default
    one per family), four benchmarks (MMLU and GSM8K the anchors), scores uniform in [0.3, 0.6]."""
    import pandas as pd

    from sloth_bayes.data import validate_table
    from sloth_bayes.model import encode, make_encoding

    rng = np.random.default_rng(seed)
    table = pd.DataFrame(
        {
            "Model": [f"m{i}" for i in range(6)],
            "Family": ["a"] * 3 + ["b"] * 3,
            "Family2": list(subs or ["a"] * 3 + ["b"] * 3),
            "Instruct": [False] * 6,
            "#Params (B)": list(sizes),
            "Pretraining Data Size (T)": list(tokens),
            **{b: rng.uniform(0.3, 0.6, 6) for b in ["MMLU", "GSM8K", "ARC", "BBH"]},
        }
    )
    t, meta = validate_table(table)
    return encode(t, make_encoding(t, meta, config), config.n_skills)


def test_free_loadings_are_signed_normals_and_each_anchor_loads_on_its_own_skill_only():
    """Every free loading is N(0, loading), negative half the time; each anchor loads 1 on its
    skill and 0 on every other."""
    from numpyro.infer import Predictive

    from sloth_bayes.model import ModelConfig, skills_model

    config = ModelConfig(n_skills=2).with_options(loading=0.7)
    data = _two_families(config)
    free = data.loading_mask == 1.0
    assert free.sum() == 4  # ARC and BBH on both skills
    draws = Predictive(skills_model, num_samples=4000, parallel=True)(jax.random.PRNGKey(3), data, config)
    lam = np.asarray(draws["loadings"])
    fixed = np.where(data.loading_mask == 2.0, 1.0, 0.0)[~free]
    np.testing.assert_array_equal(lam[:, ~free], np.broadcast_to(fixed, lam[:, ~free].shape))
    x = lam[:, free]
    assert 0.45 < (x < 0).mean() < 0.55
    np.testing.assert_allclose(x.std(0), 0.7, rtol=0.06)


def test_additive_noise_is_a_half_normal_of_its_scale():
    """``sigma_bench`` is ``|x|``, ``x ~ N(0, bench_noise)``: half-normal, mean
    ``s sqrt(2 / pi)``, some mass near 0."""
    from numpyro.infer import Predictive

    from sloth_bayes.model import ModelConfig, skills_model

    config = ModelConfig(n_skills=2).with_options(bench_noise=0.02)
    data = _two_families(config)
    draws = Predictive(skills_model, num_samples=4000, parallel=True)(jax.random.PRNGKey(4), data, config)
    x = np.asarray(draws["sigma_bench"])
    assert "sigma_bench_unfolded" in draws and (x >= 0).all()
    np.testing.assert_allclose(x.mean(), 0.02 * np.sqrt(2 / np.pi), rtol=0.03)
    assert (x < 0.002).mean() > 0.05  # half-normal: ~8% below a tenth of the scale


def test_the_deviation_knee_leaves_the_fit_alone_and_tempers_only_extrapolations():
    """Every fitted model sits inside its family's covariate range, so the knee of the slope
    deviations' growth cannot change the posterior: the log density at the same parameters is
    the same under any knee. Beyond the range a smaller knee gives a smaller deviation."""
    from numpyro.infer import Predictive
    from numpyro.infer.util import log_density

    from sloth_bayes.model import ModelConfig, deviation_term, skills_model

    config = ModelConfig(n_skills=2)
    data = _two_families(config, [1.0, 3.0, 9.0, 0.5, 2.0, 70.0], [0.3, 1.0, 2.0, 0.1, 0.5, 3.0], seed=1,
                         subs=["a", "a", "a-chat", "b", "b", "b"])
    params = {k: v[0] for k, v in Predictive(skills_model, num_samples=1)(jax.random.PRNGKey(0), data, config).items()
              if k != "y"}
    dens = [float(log_density(skills_model, (data, config.with_options(deviation_knee=knee)), {"y": data.y}, params)[0])
            for knee in (1.0, 0.125, 4.0)]
    np.testing.assert_allclose(dens, dens[0], rtol=1e-6)
    # two sd beyond a range [0, 0]: sqrt-like growth, less with a smaller knee
    dev = np.ones((1, 2, 1))
    far = [float(deviation_term(np.array([[2.0, 0.0, 0.0]]), dev, knee)[0, 0]) for knee in (1.0, 0.125)]
    np.testing.assert_allclose(far, [2.0 * 5.0**-0.25, 2.0 * 257.0**-0.25], rtol=1e-6)
    assert far[1] < far[0] < 2.0


def test_partial_centring_changes_the_coordinates_not_the_posterior():
    """The family offsets sampled at centredness ``c`` (:func:`pinned_offsets`) are the same
    posterior in other coordinates: at ``w =
    recentre(z)`` the log density is the non-centred one minus the log Jacobian ``sum c log
    sigma``, the efficiencies are the same, and ``recentre(..., inverse=True)`` gives the
    ``z`` back. Fully centred, a coarse family's coordinate is its anchor logits at its
    pivot, a sub-family's its offset's anchor logits at its own pivot: they stay put when the
    slopes move and the efficiencies move with them."""
    from numpyro.infer import Predictive
    from numpyro.infer.util import log_density

    from sloth_bayes.model import (CENTRED_SITES, ModelConfig, anchor_block, coarse_pivot_skills, recentre,
                                   skills_model, sub_pivot_skills)

    config = ModelConfig(n_skills=2)
    data = _two_families(config, [1.0, 3.0, 9.0, 0.5, 2.0, 70.0], [0.3, 1.0, 2.0, 0.1, 0.5, 3.0], seed=1,
                         subs=["a", "a", "a-chat", "b", "b", "b"])
    params = {k: v[0] for k, v in Predictive(skills_model, num_samples=1)(jax.random.PRNGKey(0), data, config).items()
              if k != "y"}
    latent = {k: v for k, v in params.items() if k not in ("alpha", "alpha_coarse", "loadings", "floor_lift",
                                                           "link_power", "tokens_latent")}
    latent["loadings_free"] = jnp.full_like(latent["loadings_free"], 0.6)
    lp_plain, tr_plain = log_density(skills_model, (data, config), {"y": data.y}, latent)
    params = {**latent, "loadings": tr_plain["loadings"]["value"]}
    rng = np.random.default_rng(0)
    centring = {n: rng.uniform(0.0, 1.0, np.shape(params[n])).astype(np.float32) for n in CENTRED_SITES}
    assert np.abs(coarse_pivot_skills(data, params["slopes"])).max() > 0.1  # the shifts are exercised
    moved = recentre(params, centring, data)
    assert not np.allclose(moved["z_coarse"], params["z_coarse"])
    lp_centred, tr_centred = log_density(skills_model, (data._replace(centring=centring), config), {"y": data.y},
                                         {**latent, **moved})
    log_jac = sum(float(np.sum(centring[n] * np.log(params[s])[None, :])) for n, s in CENTRED_SITES.items())
    np.testing.assert_allclose(float(lp_centred), float(lp_plain) - log_jac, rtol=1e-5)
    for site in ("alpha", "alpha_coarse"):
        np.testing.assert_allclose(tr_centred[site]["value"], tr_plain[site]["value"], rtol=1e-5, atol=1e-5)
    back = recentre({**params, **moved}, centring, data, inverse=True)
    for n in CENTRED_SITES:
        np.testing.assert_allclose(back[n], params[n], rtol=1e-5, atol=1e-5)
    # fully centred: move the slopes, keep w: the anchor logits at the pivot
    # (alpha + pivot @ slopes) @ anchors^T are unchanged
    full = {n: np.ones_like(c) for n, c in centring.items()}
    w = recentre(params, full, data)
    other = {**params, "slopes": params["slopes"] + 0.3}
    z2 = recentre({**other, **w}, full, data, inverse=True)
    for name, pivot in (("z_coarse", coarse_pivot_skills), ("z_sub", sub_pivot_skills)):
        pinned = lambda p, z: ((p[CENTRED_SITES[name]] * z + pivot(data, p["slopes"]))
                               @ anchor_block(p["loadings"], data.loading_mask).T)
        np.testing.assert_allclose(pinned(other, z2[name]), pinned(params, params[name]), rtol=1e-5, atol=1e-5)
        assert not np.allclose(z2[name], params[name])
    assert np.abs(sub_pivot_skills(data, params["slopes"])).max() > 0.1  # a sub-family off its coarse pivot


def test_centredness_is_the_share_of_the_prior_variance_the_data_remove():
    """``c = 1 - var(z)``: 0.75 for draws of variance 0.25, 0 (clipped) for a prior-wide 2,
    1 for a point, computed per (group, skill) over every leading axis (chains, draws)."""
    from sloth_bayes.model import centredness

    rng = np.random.default_rng(1)
    draws = np.stack([0.5 * rng.standard_normal((4, 20000)), np.sqrt(2.0) * rng.standard_normal((4, 20000)),
                      np.full((4, 20000), 3.0)], axis=-1)[..., None, :]  # (chains, draws, 1, 3)
    np.testing.assert_allclose(centredness(draws), [[0.75, 0.0, 1.0]], atol=0.02)


def test_anchors_load_on_their_own_skill_only_and_leave_no_rotation():
    """Each anchor's loadings are 1 on its skill and 0 on every other; the other benchmarks
    are free. No invertible map of the skills other than the identity keeps the anchor
    block (the identity), so the likelihood leaves no rotation for the chains to split on."""
    from sloth_bayes.model import ModelConfig, anchor_block, loading_mask

    names = ["MMLU", "ARC", "GSM8K", "BBH", "IFEval"]
    mask = loading_mask(names, ["MMLU", "GSM8K", "IFEval"], 3)
    np.testing.assert_array_equal(mask[[0, 2, 4]], [[2, 0, 0], [0, 2, 0], [0, 0, 2]])
    np.testing.assert_array_equal(mask[[1, 3]], np.ones((2, 3)))
    data = _two_families(ModelConfig(n_skills=2))
    lam = jnp.asarray(np.select([data.loading_mask == 2.0, data.loading_mask == 1.0], [1.0, 0.3], 0.0))
    np.testing.assert_array_equal(anchor_block(lam, data.loading_mask), np.eye(2))
