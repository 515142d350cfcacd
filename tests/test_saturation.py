"""Saturating skill growth (``ModelConfig.saturation``) and the saturation table, on known
answers: the term is the linear law at rate 0, and :func:`saturation` finds the size where a
skill of known slopes and rate stops gaining, or says it does not within the range."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sloth_bayes.model import ModelConfig, saturating_skills

K2_SAT = ModelConfig(n_skills=2, saturation=True)


def test_saturating_skills_is_the_linear_law_at_rate_zero_and_below_the_centre():
    g = np.linspace(-4.0, 6.0, 41)[:, None] * np.ones((1, 3))
    rate = np.array([0.0, 0.3, 1.2])
    out = np.asarray(saturating_skills(g, rate))
    np.testing.assert_allclose(out[:, 0], g[:, 0], rtol=1e-6)  # rate 0: the linear law
    below = g[:, 0] <= 0
    np.testing.assert_allclose(out[below], g[below], rtol=1e-6)  # below the centre: unchanged
    # beyond it: (1 - exp(-r g)) / r, bounded by 1 / r, gain exp(-r g)
    for k in (1, 2):
        r = rate[k]
        np.testing.assert_allclose(out[~below, k], (1 - np.exp(-r * g[~below, k])) / r, rtol=1e-5)
        assert out[:, k].max() < 1 / r
    import jax

    grad = jax.vmap(jax.grad(lambda x: saturating_skills(x, 0.3)))(np.array([-1.0, 0.0, 2.0], np.float32))
    np.testing.assert_allclose(grad, [1.0, 1.0, np.exp(-0.6)], rtol=1e-5)
    # no NaN in the gradient at rate 0 (the branch not taken divides by the rate)
    g_rate = jax.grad(lambda r: saturating_skills(np.float32(2.0), r))(np.float32(0.0))
    assert np.isfinite(g_rate)


def test_the_model_with_saturation_at_rate_zero_gives_the_linear_laws_skills():
    """Same parameters, saturation on with every rate 0: the skills of every LLM are those of
    the model without the term."""
    from numpyro import handlers

    from sloth_bayes.model import skills_model
    from sloth_bayes.simulate import draw_prior, prepare_design

    linear = ModelConfig(n_skills=2)
    design = prepare_design(config=linear, seed=2)
    draw = {k: v[0] for k, v in draw_prior(design, 1, seed=5).items() if k != "y"}
    params = draw | {"tau_saturation": np.float32(0.5), "saturation_rate_unfolded": np.zeros(2, np.float32)}

    def skills(config, p):
        tr = handlers.trace(handlers.seed(handlers.condition(skills_model, data=p), 0)).get_trace(design.data, config)
        return np.asarray(tr["skills"]["value"])

    expect = skills(linear, draw)
    np.testing.assert_allclose(skills(K2_SAT, params), expect, rtol=1e-5, atol=1e-6)
    # and a positive rate lowers only the skills beyond the centre
    bent = skills(K2_SAT, params | {"saturation_rate_unfolded": np.array([0.8, 0.0], np.float32)})
    assert np.all(bent[:, 0] <= expect[:, 0] + 1e-6) and np.any(bent[:, 0] < expect[:, 0] - 0.01)
    np.testing.assert_allclose(bent[:, 1], expect[:, 1], rtol=1e-5, atol=1e-6)


# -- saturation(): a posterior whose slopes and rates are known ---------------------------------
SLOPES = np.array([[0.8, 0.6], [0.3, 0.2], [0.1, 0.0]], np.float32)  # (covariate, skill)
RATES = np.array([0.7, 0.0], np.float32)


def _known_fit(n_draws: int = 8):
    """A fit whose posterior draws (from the prior, seeded) all share ``SLOPES`` and
    ``RATES``: skill 1 saturates at a size known in closed form, skill 2 never does."""
    from sloth_bayes import SlothBayes
    from sloth_bayes.inference import draws_to_datatree
    from sloth_bayes.simulate import draw_prior, prepare_design

    design = prepare_design(config=K2_SAT, seed=4)
    fixed = {"slopes": SLOPES, "tau_saturation": np.float32(1.0), "saturation_rate_unfolded": RATES}
    draws = draw_prior(design, n_draws, seed=1, params=fixed)
    chain = {k: v[None] for k, v in draws.items() if k != "y"}
    stats = {"diverging": np.zeros((1, n_draws), bool)}
    tree = draws_to_datatree(chain, stats, design.data, design.encoding, K2_SAT)
    model = SlothBayes(config=K2_SAT)
    return model._set_fit(tree, design.encoding, {}, 0), design.encoding


def _true_size(enc, skill: int, tokens: float, threshold: float) -> float:
    """Closed form: the gain per doubling of parameters at fixed tokens is ``c exp(-r g)``
    beyond the centre, ``c = (b_size + b_inter t) ln 2 / size_scale``."""
    t = (np.log(tokens) - enc.tokens_loc) / enc.tokens_scale
    b_s, b_t, b_st = SLOPES[:, skill].astype(float)
    c = (b_s + b_st * t) * np.log(2) / enc.size_scale
    g_star = np.log(c / threshold) / RATES[skill]
    z_star = (g_star - b_t * t) / (b_s + b_st * t)
    return float(np.exp(z_star * enc.size_scale + enc.size_loc))


#: The path of the tests (one shape: the model's program on it compiles once).
PATH = dict(size_range=(0.05, 5000.0), n_grid=41, tokens=2.0)


@pytest.fixture(scope="module")
def known():
    return _known_fit()


@pytest.fixture(scope="module")
def known_path(known):
    from sloth_bayes.saturation import size_path

    return size_path(known[0], **PATH)


def test_saturation_recovers_a_known_saturation_size(known, known_path):
    from sloth_bayes.saturation import CANNOT_TELL, NEVER_ABOVE, NOT_SATURATED, SATURATED, saturation

    fit, enc = known
    tokens, thr = PATH["tokens"], 0.15
    truth = _true_size(enc, 0, tokens, thr)
    table = saturation(known_path, skill_threshold=thr).set_index(["kind", "name"])
    s1, s2 = table.loc[("skill", "skill_1")], table.loc[("skill", "skill_2")]
    assert 0.05 < truth < 5000
    assert s1["status"] == SATURATED and s1["p_saturated"] == 1.0
    np.testing.assert_allclose([s1["saturation_size"], s1["lower"], s1["upper"]], truth, rtol=0.03)
    # rate 0: the gain never shrinks
    assert s2["status"] == NOT_SATURATED and s2["p_saturated"] == 0.0 and np.isinf(s2["saturation_size"])
    assert s2["gain_at_end"] == pytest.approx(s2["gain_at_start"], rel=1e-3)
    # a range that ends before the truth: not saturated within it
    short = saturation(fit, skill_threshold=thr, **(PATH | {"size_range": (0.05, truth / 3)}))
    assert short.set_index(["kind", "name"]).loc[("skill", "skill_1"), "status"] == NOT_SATURATED
    # benchmarks: one row each, statuses from the same three
    bench = table.loc["benchmark"]
    assert len(bench) == len(enc.benchmarks)
    assert set(bench["status"]) <= {SATURATED, NOT_SATURATED, CANNOT_TELL, NEVER_ABOVE}
    # a threshold above every gain: below it throughout
    high = saturation(known_path, skill_threshold=10.0).set_index(["kind", "name"])
    assert high.loc[("skill", "skill_2"), "status"] == NEVER_ABOVE
    assert high.loc[("skill", "skill_2"), "saturation_size"] == known_path.sizes[0]


def test_gains_are_the_closed_form_gains(known):
    from sloth_bayes.saturation import gains

    fit, enc = known
    tokens = 2.0
    t = (np.log(tokens) - enc.tokens_loc) / enc.tokens_scale
    at = [0.2, 5.0, 300.0]
    g = gains(fit, at=at, tokens=tokens)
    assert set(g["doubling"]) == {"parameters", "tokens"} and set(g["kind"]) == {"skill", "benchmark"}
    got = g[(g.kind == "skill") & (g.doubling == "parameters")].pivot(index="size", columns="name", values="median")
    z = (np.log(at) - enc.size_loc) / enc.size_scale
    lin = (SLOPES[0] + SLOPES[2] * t) * np.log(2) / enc.size_scale  # (K,)
    growth = np.stack([z, np.full_like(z, t), z * t], -1) @ SLOPES
    expect = lin * np.exp(-RATES * np.maximum(growth, 0.0))
    np.testing.assert_allclose(got.to_numpy(), expect, rtol=0.01, atol=1e-4)


def test_saturation_sizes_reads_rises_and_plateaus():
    from sloth_bayes.saturation import saturation_sizes

    sizes = np.geomspace(1, 100, 5)
    gain = np.array([[0.0, 0.5, 0.3, 0.1, 0.0],   # leaves its floor, then saturates
                     [0.5, 0.5, 0.5, 0.5, 0.5],   # never
                     [0.0, 0.0, 0.0, 0.0, 0.0]])  # below all along
    out = saturation_sizes(gain.T[None], sizes, 0.2)[0]
    assert sizes[2] < out[0] < sizes[3] and np.isinf(out[1]) and out[2] == sizes[0]
    np.testing.assert_allclose(np.log(out[0]), np.log(sizes[2]) + 0.5 * np.log(sizes[3] / sizes[2]))


def test_plot_saturation_returns_its_axes(known_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sloth_bayes.saturation import plot_saturation

    path = known_path
    fig, ax = plt.subplots()
    assert plot_saturation(path, what="skills", skill_threshold=0.15, ax=ax) is ax
    assert len(ax.get_lines()) >= 3  # two trajectories and skill 1's saturation size
    ax2 = plot_saturation(path, what=["MMLU", "GSM8K"])
    assert ax2.get_xscale() == "log"
    with pytest.raises(ValueError, match="neither"):
        plot_saturation(path, what=["nope"])
    plt.close("all")


def test_size_path_checks_its_arguments(known):
    from sloth_bayes.saturation import size_path

    fit, _ = known
    with pytest.raises(ValueError, match="not a sub-family"):
        size_path(fit, family="nope", n_grid=3)
    with pytest.raises(ValueError, match="not both"):
        size_path(fit, tokens=1.0, tokens_per_param=20.0, n_grid=3)
    with pytest.raises(ValueError, match="size_range"):
        size_path(fit, size_range=(10.0, 1.0))


def test_a_family_path_uses_that_familys_law(known, known_path):
    """A sub-family's path runs at its own efficiency and slope deviations; the population's
    at the centre of the families (a typical new family)."""
    from sloth_bayes.saturation import size_path

    fit, enc = known
    fam = enc.subfamilies[0]
    own = size_path(fit, family=fam, **PATH)
    assert own.family == fam and known_path.family == "population"
    assert not np.allclose(own.skills, known_path.skills)
    assert "2T tokens" in own.description and "base" in own.description
    assert np.all(np.isfinite(own.scores)) and own.scores.shape[1:] == (PATH["n_grid"], len(enc.benchmarks))


@pytest.mark.slow
def test_saturation_is_recovered_from_a_simulated_table():
    """Scores simulated by the model at a known strong saturation of skill 1 and none of
    skill 2, refitted: skill 1's saturation size interval holds the truth; skill 2 is not
    said to saturate."""
    from sloth_bayes import SlothBayes
    from sloth_bayes.predictive import encoding_of
    from sloth_bayes.saturation import SATURATED, saturation
    from sloth_bayes.simulate import simulate_table

    fixed = {"slopes": SLOPES, "tau_saturation": np.float32(1.0), "saturation_rate_unfolded": RATES}
    table, _ = simulate_table(config=K2_SAT, seed=6, n_families=12, params=fixed, missing_cells=0.0,
                              sizes_per_family=(4, 6))
    fit = SlothBayes(config=K2_SAT, chains=2, warmup=400, draws=400, svi_steps=1000).fit(
        table, seed=0, progress_bar=False)
    enc = encoding_of(fit.idata_)
    tokens, thr = 2.0, 0.15
    truth = _true_size(enc, 0, tokens, thr)
    table = saturation(fit, skill_threshold=thr, size_range=(0.05, 5000.0), tokens=tokens).set_index(["kind", "name"])
    s1, s2 = table.loc[("skill", "skill_1")], table.loc[("skill", "skill_2")]
    assert s1["lower"] <= truth <= s1["upper"] or (s1["lower"] <= truth and not np.isfinite(s1["upper"]))
    assert s2["status"] != SATURATED
    assert isinstance(table, pd.DataFrame)
