"""The hierarchical skills scaling law as a plain NumPyro model function.

Everything here works on arrays: :func:`encode` turns a validated table into a
:class:`ModelData` of JAX-ready arrays, :func:`skills_model` is the NumPyro model, and
:func:`benchmark_mean` / :func:`observation_sd` are the pieces that the forecaster reuses
so the predictive distribution is the model's own, not a copy of it.

Structure (see ``MODEL.md`` of the project):

* ``theta_i = alpha_sub(i) + delta * instruct_i + x_i B + gamma q_i + (x_i - xbar_c) dB_c
  + eps_i`` with ``x_i = (z_size, z_tokens, z_size * z_tokens)`` standardised log size / log
  tokens and ``q_i`` = ``z_size^2`` made orthogonal to 1 and ``z_size`` (:func:`size_bend`);
  the optional ``gamma`` (per skill, shared by all families) bends the law in log size
  (concave on the leaderboard: each doubling of size gains a little less), so a family's
  smallest model sits below the straight line through its family;
* coarse-family efficiencies ``alpha_coarse = sigma_coarse * z``; a sub-family is centred
  on its coarse family (``alpha_sub = alpha_coarse + sigma_sub * z'``); ``z, z'`` are
  Student-t(4) (``ModelConfig.efficiency_df``: a few outlying families do not widen the
  spread of all);
* families deviate a little from the shared slopes (``dB ~ N(0, tau^2)``), pivoting on
  the family's mean covariates (``(x_i - xbar_family) dB``), which widens intervals with
  the distance of an extrapolation from the family's observed models: linearly across
  their range, like a square root beyond it (:func:`deviation_distance`);
* unknown token counts are latent, centred on the family's counts, or tightly on a
  same-size sibling's (an instruct model and its base were pretrained on the same data);
* optionally (``llm_residual``) each LLM has its own skill residual ``eps_i ~ N(0, sigma_llm^2)``;
* each coarse family has its own benchmark profile ``u_fj ~ N(0, sigma_fb_j^2)`` (logit
  offsets the skills do not explain; none at the anchor benchmarks, whose family offsets
  are the skills themselves) and instruct models a per-benchmark shift ``d_j``;
* every hierarchical spread (``sigma_*``, ``tau``) has a Gamma(2, 2 / scale) prior: no mass
  at 0, so a small spread does not pull the sampler into a funnel; the additive noise
  ``sigma_bench``, which has no funnel below it, is half-normal, sampled as ``|x|``
  (``folded_noise``);
* benchmark ``j``: ``mu = floor_j + (1 - floor_j) * sigmoid(lambda_j . theta + b_j + u + d) **
  power`` (``power`` shared and learned, ``ModelConfig.link_power``: scores reach chance
  sooner below a benchmark's difficulty than they approach 1 above it), with one marker
  benchmark per skill (an anchor) loading 1 on its skill and 0 on every other
  (``pure_anchors``: skill ``k`` is its anchor's logit, so no rotation of the skills leaves
  the likelihood unchanged: identification; a lower-triangular pattern is an option); the
  other loadings are free and signed, ``N(0, s)`` (``signed_loadings``; non-negative ones are
  an option);
* observed score = ``clip(mu + noise, 0, 1)``, noise sd ``sqrt(mu (1-mu) / n_items_j +
  sigma_bench_j^2 + (sigma_logit_j * dmu/dlogit)^2)`` (the logistic's slope is
  ``(mu - floor_j)(1 - mu) / (1 - floor_j)``; :func:`observation_sd`): a censored
  normal, so exact 0s and 1s are data, not errors. The last term is over-dispersion on the
  logit scale (the delta method of a normal logit offset): a model's run-to-run spread
  shrinks near the floor and the ceiling, so a small model's GSM8K of 0.16 where its peers
  score 0.02 is read as skill, not noise; the small additive ``sigma_bench`` leaves room
  for scores a little below chance;
* a score recorded rounded (the v2 columns: whole percents) is read as the interval it was
  rounded from (``ModelConfig.rounded_scores``);
* ``floor_j`` is the chance level, except where no chance level can be computed (IFEval's
  instruction checks, ``ModelConfig.floor_lift``): there the fit learns it above chance.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pandas as pd
from jax.scipy.special import log_ndtr
from numpyro.distributions import constraints

from .data import FAMILY, INSTRUCT, MODEL, SIZE, SUBFAMILY, TOKENS, rounding_step

COVARIATES = ("log_size", "log_tokens", "log_size_x_log_tokens")
#: Prior sd (standardised log tokens) of an unknown count next to a same-size sibling's.
SIBLING_TOKENS_SCALE = 0.05
#: Benchmarks preferred as skill anchors, in order (well observed, distinct skills).
ANCHOR_PREFERENCE = ("MMLU", "GSM8K", "HellaSwag", "IFEval", "TruthfulQA", "BBH", "ARC")
FAMILY_BENCH = ("none", "coarse", "sub", "nested")
SCALE_PRIORS = ("half_normal", "gamma")
DEVIATION_GROWTH = ("linear", "sqrt")
#: How a benchmark's answers are scored (``answer`` in the benchmark metadata; "unknown" for
#: a user's own benchmark): what ``ModelConfig.floor_lift`` selects on.
ANSWER_KINDS = ("choice", "rules", "exact", "unknown")


@dataclass(frozen=True)
class ModelConfig:
    """Settings of the model structure (priors and switches), stored with every fit.

    Attributes
    ----------
    n_skills : number of latent skills K (4 since stop 15, the fourth anchored on IFEval: a
        v2 marker. On the full table PSIS-LOO prefers it to K=3 by 44 ELPD (SE 11); at seed 0
        its chains met the convergence thresholds (seeds 1-2 missed, as K=3's three did; with
        stop 16's pooled warm-up and no interaction deviation seeds 2-4 meet them; seeds 0, 1,
        6 miss R-hat by <= 0.003 and seed 5 ESS (337, MATH's loadings); the slow split of the
        v2 loadings between the MMLU and GSM8K skills is gone); the lofo-1 pooled MAE falls on
        every set (v1 / v2 / all 3.90 / 2.59 / 3.39 -> 3.78 / 2.52 / 3.22); v2's 90% intervals
        get wider (coverage 0.965 -> 0.979). K=3 was preferred to K=2 the same way.)
    anchors : benchmarks whose loadings form the anchor block (first K used; see
        ``pure_anchors``); ``None`` picks from :data:`ANCHOR_PREFERENCE` among the fitted benchmarks.
    slope_deviations : let coarse families deviate from the shared slopes.
    llm_residual : give every LLM its own skill residual (off by default: with the family
        benchmark profiles it competes with the over-dispersion for GSM8K's spread and a
        chain settles in a second solution; the per-benchmark over-dispersion carries it).
    loading_scale, slope_scale, difficulty_scale : prior scales (half-normal / normal).
    sub_scale, llm_scale, deviation_scale, bench_noise_scale : prior scales (see
        ``scale_prior``) of the sub-family spread, the per-LLM residual, slope deviations and
        the additive over-dispersion (its half-normal scale with ``folded_noise``).
    family_bench : a family's own benchmark profile (logit offsets that no skill explains,
        carried from its observed models to its forecasts): per ``"coarse"`` family, per
        ``"sub"``-family, both (``"nested"``) or ``"none"``; ``family_bench_scale`` is the
        prior scale of its per-benchmark spread.
    size_curvature : a shared quadratic term in standardised log size per skill (normal prior,
        scale ``curvature_scale``; the covariate is :func:`size_bend`). Skills are concave in
        log size (the full table's posterior: -0.19 and -0.12 logits per squared sd for
        skills 1 and 3), so a family's smallest model sits below the straight law. Without
        the term, forecasts from it fall short: lofo-1 MAE 4.01 -> 3.53 points (v1, pooled),
        bias -1.5 -> -0.7. Off by default: a parabola extrapolates badly from a very small
        model (qwen1.5 forecast from its 0.5B: 40 of 78 scores inside the 90% intervals,
        against 66 without it).
    logit_noise : over-dispersion on the logit scale, per benchmark (``sigma_logit``,
        prior scale ``logit_noise_scale``), beside the additive ``sigma_bench``
        (``bench_noise_scale``, small: it only needs to allow scores a little below chance).
        lofo-1, same sampler and seed, against the additive noise alone (scale 0.03): MAE
        pooled 4.01 -> 3.82 (v1), 2.92 -> 2.67 (v2), 3.58 -> 3.35 (all); v1 50% coverage
        0.61 -> 0.56; the main job's qwen1.5 forecast from its 0.5B model (4 x 300 draws):
        MAE 6.3 -> 4.5 points, 66 -> 70 of 78 scores inside the 90% intervals (72 with the
        default 4 x 1000).
    instruct_bench : a per-benchmark logit shift of instruct/chat models on top of the
        per-skill ``instruct_shift`` (instruction tuning moves IFEval and GSM8K more than
        its skills explain); ``instruct_bench_scale`` its normal prior scale.
    profile_anchors : how a family profile is kept apart from the family's skills. ``True``:
        the anchor benchmarks have no profile (a family's skills are its anchors' offsets;
        the other benchmarks' profiles are read relative to them). ``False``: the profile is
        projected orthogonal to the loadings, which mixes every benchmark's profile scale
        into every other and left the anchors' scales (MMLU, GSM8K) weakly identified:
        min bulk ESS 143, R-hat 1.042 on the full table. Same lofo-1 accuracy either way
        (MAE 3.85 / 2.62 / 3.36 vs 3.82 / 2.67 / 3.35 points on v1 / v2 / all). With
        ``True`` ``sigma_family_bench`` and ``z_family_bench`` have no entries for the
        anchors (:func:`profiled_benchmarks`; before stop 38 they had, unused, at their prior,
        and their chains' folded R-hat set the fit's maximum at 5 of 12 stop-37 fits).
    folded_loadings : sample each free loading as ``|x|``, ``x ~ N(0, loading_scale)``:
        exactly its half-normal prior, without the log transform of a positive parameter.
        Same model; in log space a loading near 0 has a long tail and two loadings that
        share a total (a v2 benchmark's split between two correlated skills) lie on a curved
        ridge. Full table, 4 x 1000: min bulk ESS 126 -> 373 and R-hat 1.044 -> 1.007 at
        seed 2, 383 -> 403 at seed 0; fits take ~40% longer. Applies when
        ``signed_loadings`` is off.
    signed_loadings : the free loadings are signed, ``N(0, loading_scale)`` (default since
        stop 33); ``False``: non-negative (half-normal, sampled as ``folded_loadings`` says).
        The anchors identify the skills either way (each fixes its skill's unit and sign;
        the zeros above them fix the rotation): non-negative free loadings are an extra
        belief (no skill lowers a score), not an identification. The belief did not hold on
        the full table: with it the v2 benchmarks sat on the boundary of skill 4 (IFEval's),
        IFEval's split over skills 1-3 was the slowest quantity of the fit, and folded
        chains at +x and -x of one loading blurred the pooled mass matrix. Signed, skill 4
        is a contrast: IFEval loads 1.57 on skill 1 and 1 on skill 4, and BBH, MUSR,
        TruthfulQA, MATH and MMLU-PRO load -0.4 to -0.6 on skill 4 (instruction following
        against reasoning). PSIS-LOO prefers it by 20 ELPD (SE 7; seed 4, 4 x 1000). Full
        table, 4 x 1000, seeds 0-4, non-negative -> signed: max R-hat 1.009 / 1.008 / 1.012 /
        1.011 / 1.022 -> 1.008 / 1.0095 / 1.008 / 1.012 / 1.009, min bulk ESS 672 / 516 / 515
        / 446 / 365 -> 492 / 575 / 574 / 482 / 470, 114-119 -> 102-108 s (seed 3's worst is a
        latent token count near its prior, mixtral-8x22b, bulk ESS 666). lofo-1 (2 x 200
        draws, seed 0, one machine), v1 / v2 / all: MAE 2.98 / 2.13 / 2.70 -> 2.97 / 2.22 /
        2.69 points, CRPS 2.15 / 1.56 / 1.95 -> 2.14 / 1.62 / 1.96, 50% coverage 0.592 /
        0.632 / 0.622 -> 0.583 / 0.535 / 0.587, 90% 0.955 / 0.944 / 0.944 -> 0.943 / 0.938 /
        0.939 (seeds 1-2 and zero-shot: README, Accuracy).
    deviation_per_skill : the spread ``tau_slope`` of the slope deviations per covariate and
        skill (else per covariate, shared by the skills). Off by default: lofo-1 (2 x 200
        draws, seed 0) 50% coverage 0.595 / 0.590 / 0.619 -> 0.554 / 0.549 / 0.561 (v1 / v2 /
        all), but MAE 3.85 / 2.62 / 3.36 -> 4.11 / 2.68 / 3.63 points (the MMLU skill's
        deviations grow, the HellaSwag skill's shrink).
    interaction_deviation : families deviate from the shared slope of the size x tokens
        interaction too (else only from those of log size and log tokens). Off by default
        since stop 16. A deviation of the interaction slope is a size-slope deviation scaled
        by the family's standardised log tokens; the data say almost nothing about it per
        family (its posterior sd is the prior's, ``tau_slope``), and its spread (0.08 +- 0.05
        against 0.23 for size) was the slowest quantity of the full fit: 4 x 1000 draws,
        seeds 0-4, max R-hat 1.009 / 1.009 / 1.020 / 1.011 / 1.009, min bulk ESS 407 / 724 /
        392 / 693 / 456, 0 / 1 / 5 / 0 / 0 divergences; without it 1.013 / 1.010 / 1.006 /
        1.007 / 1.008, 705 / 570 / 770 / 928 / 793, no divergence, ~10% faster. Its cost on
        lofo-1 (2 x 200 draws, seed 0, one machine), v1 / v2 / all: MAE 3.74 / 2.45 / 3.17 ->
        3.82 / 2.48 / 3.22 points, 90% coverage 0.920 / 0.972 / 0.942 -> 0.905 / 0.979 /
        0.937, 50% 0.530 / 0.576 / 0.577 -> 0.515 / 0.576 / 0.566: within the 0.06 points
        that a sampler seed moves the MAE. (With stop 13's linear deviations and K=3 it cost
        more: 3.85 / 2.62 / 3.36 -> 4.02 / 2.65 / 3.49.)
    deviation_growth : how a family's slope deviation grows with a model's distance from
        the family's pivot (standardised covariate units): ``"linear"`` (a slope) or
        ``"sqrt"``: linear across the covariate range of the family's fitted models, and
        beyond it by ``e (1 + (e / deviation_knee)^2)^(-1/4)`` of the excess ``e``: like
        ``sqrt(knee e)`` far out (a random walk's spread, not a line's). Inside the range the
        model is the linear one, so the fit of the observed models (and the shared slopes)
        is unchanged; only extrapolations beyond a family's models are tempered. See
        :func:`deviation_distance`. The default since stop 14: with linear deviations the
        lofo-1 errors stayed at 3-4 points beyond 1.2 decades of extrapolation while the 90%
        intervals widened to 30 points. lofo-1 (2 x 200 draws, seed 0), v1 / v2 / all: MAE
        3.85 / 2.62 / 3.36 -> 3.85 / 2.67 / 3.38 points, 50% coverage 0.595 / 0.59 / 0.62 ->
        0.53 / 0.56 / 0.57, 90% 0.946 / 0.965 / 0.955 -> 0.935 / 0.958 / 0.942 (seed 1: MAE
        3.91 / 2.62 / 3.36, 50% 0.515 / 0.569 / 0.571, 90% 0.911 / 0.958 / 0.931). Tempered from
        the pivot instead (no linear range), the fit of the families' own models changes and
        with it the shared slopes: knee 1, MAE 4.19 / 2.67 / 3.57 (bias -1.4 -> -2.2 points).
    deviation_knee : the knee of ``"sqrt"`` growth (standardised covariate units): 0.125 since
        stop 34 (1 before). Beyond a family's fitted models the deviation then grows like
        ``sqrt(0.125 e)``: half a unit at two units out, against 1.3 with a knee of 1. Only
        forecasts beyond a family's range feel it (every fitted model is inside its family's
        range, so the posterior is the same): a belief about extrapolation that only a backtest
        can check. lofo-1 (2 x 200 draws, seed 0, the same fits forecast with each knee), v1 /
        v2 / all, knee 1 -> 0.5 -> 0.25 -> 0.125: 50% coverage 0.595 / 0.549 / 0.590 -> 0.568 /
        0.549 / 0.579 -> 0.560 / 0.556 / 0.574 -> 0.548 / 0.542 / 0.561, 90% 0.943 / 0.944 /
        0.942 -> 0.932 / 0.944 / 0.937 -> 0.923 / 0.944 / 0.931 -> 0.908 / 0.944 / 0.929, CRPS
        2.12 / 1.61 / 1.93 -> 2.11 / 1.60 / 1.92 (every smaller knee), MAE 2.94 / 2.18 / 2.64 ->
        2.93 / 2.18 / 2.63: the far forecasts' errors (1-3 points at 1.2-1.8 decades) never
        grew as a knee of 1 said; seeds and zero-shot: README, Accuracy.
    instruct_noise : instruct/chat models get their own logit-scale noise per benchmark:
        ``sigma_logit_j * exp(instruct_noise_j)`` with ``instruct_noise_j ~ N(0,
        instruct_noise_scale)`` (see :func:`logit_noise_sd`). Post-training moves some
        benchmarks erratically (a chat model's GSM8K or IFEval), and one noise scale per
        benchmark is then too wide for base models and too narrow for tuned ones. On the
        full table (default model, posterior means) the mean absolute residual of instruct
        models is 2.9 points against 1.8 for base models: GSM8K 9.6 vs 3.4, IFEval 7.2 vs
        3.2, BBH 2.7 vs 1.1, MUSR 2.6 vs 1.7; ARC, HellaSwag and Winogrande alike.
    correlated_efficiency : coarse families' efficiencies are correlated across skills:
        ``alpha_coarse = sigma_coarse * (L z)`` with ``L ~ LKJCholesky(K, 2)``
        (``efficiency_chol``), instead of independent skills. A family seen through one small
        model that scores near chance on some benchmarks then borrows the skills it shows
        for those it does not, and a new family draws its skills with the fitted
        correlation. Off by default: no gain beyond the sampler seed's noise. lofo-1 (2 x
        200 draws, one machine, v1 / v2 / all), seed 0: MAE 3.86 / 2.51 / 3.24 -> 3.79 /
        2.46 / 3.16 points, CRPS 2.74 / 1.77 / 2.33 -> 2.66 / 1.74 / 2.25; seed 1: MAE 3.78
        / 2.45 / 3.17 -> 3.94 / 2.53 / 3.31, CRPS 2.69 / 1.78 / 2.29 -> 2.76 / 1.79 / 2.34;
        90% coverage within 0.01 of the default's. Zero-shot, seed 0: MAE 5.70 / 3.02 /
        4.34, 90% coverage 0.892 / 0.985 / 0.950. Full table, 4 x 1000, seed 0: max R-hat
        1.008, min bulk ESS 630 (``efficiency_chol``), no divergence; the posterior
        correlations are modest (-0.49 to 0.24, sd ~0.3). With pure anchors (stop 38) the
        skills correlate more across families (posterior means of the coarse efficiencies:
        0.83 between the MMLU and GSM8K skills) and the option was measured again, against
        pure anchors alone: lofo-1 (seed 0) MAE 2.95 / 2.55 / 2.76 -> 2.91 / 2.42 / 2.67,
        zero-shot 90% coverage 0.965 / 0.948 (v2 / all), PSIS-LOO +4.6 ELPD, but the
        fourth skill's correlations mix slowly: full table, seeds 0-2, max R-hat 1.0093 /
        1.0129 / 1.0213 (``efficiency_chol[skill_4, skill_4]``, ``sigma_bench[IFEval]``),
        min bulk ESS 688 / 449 / 419. Off.
    floor_lift, floor_lift_scale : the answer kinds (``answer`` in the benchmark metadata)
        whose lower asymptote is learned above the chance level: ``floor_j = c_j + (1 - c_j)
        * |x_j|``, ``x_j ~ N(0, floor_lift_scale)`` (folded, like the loadings; ``floor_lift``
        holds ``|x_j|``, 0 for the others). Default ``("rules",)``: IFEval, whose checks of
        instructions any text meets some of, so its floor of 0 is a guess (on the 160-LLM
        table models with MMLU at chance score 0.06-0.26 there; the fit's floor: 0.20 +-
        0.013). ``"choice"`` floors are 1/#choices, ``"exact"`` ones (GSM8K, MATH Lvl 5: a
        free-form answer must match) 0. With the floor too low, a model that knows nothing
        sits on the rising part of the sigmoid and its family's forecasts spread as if its
        skills were known to grow (the 3PL item-response model's guessing parameter is the
        same idea). lofo-1 (2 x 200 draws, no baselines, one machine, seed 0; README's
        Accuracy for seeds 1 and 2): v2 MAE 2.53 -> 2.21 points, CRPS 1.77 -> 1.60, 90% coverage 0.979 ->
        0.958 (IFEval's: 1.0 -> 0.875, its 90% intervals 27 -> 19.5 points wide); all MAE 3.32
        -> 3.12; v1 has no IFEval. Lifting the choice benchmarks too (``("choice",
        "rules")``, scale 0.05) gained nothing more on v2 (MAE 2.19 / 2.37 at seeds 0 / 1)
        and cost every v1 benchmark (ARC +0.34, TruthfulQA +0.37, GSM8K +0.24 MAE points;
        v1 pooled 3.82 -> 4.00). The scale: at 0.05 IFEval's lift (0.17 +- 0.03, three prior sds out) traded
        off against its additive noise and difficulty (correlations 0.73, -0.90) and the
        full fit missed (R-hat 1.012, bulk ESS 317 at ``sigma_bench[IFEval]``); at 0.2 the
        data set it (correlations 0.20, -0.78) and the fit converged (R-hat 1.008, min bulk
        ESS 663, 230 s against 225 s without the lift, seed 0, one machine).
    link_power, link_power_scale : the link is ``sigmoid(x) ** power`` (:func:`link`) with
        one ``power`` shared by every benchmark, ``log(power) ~ N(0, link_power_scale)``;
        ``False``: the logistic (power 1). Default since stop 20. Real scores reach chance
        sooner than the logistic's lower tail lets them: in the stop-19 default's full fit,
        models just above the floor score below their fitted means on most benchmarks (ARC
        -4.8 / -3.3 / -1.5 points at heights (mu - floor) / (1 - floor) below 0.02 / 0.05 /
        0.1, HellaSwag -1.9, MMLU -1.9, GSM8K -1.5), so a family's smallest model at chance
        read as a very low efficiency and its large models were forecast low. The full table
        puts the power at 4.0 +- 0.9: below the benchmark's difficulty a score falls 4 times
        as fast as it rises above it. lofo-1 (2 x 200 draws, one machine type), v1 / v2 /
        all: MAE pooled 3.77 / 2.21 / 3.12 with the logistic (seed 0) -> 3.17 / 2.19 / 2.82
        (seed 0) and 3.12 / 2.23 / 2.80 (seed 1); groups 4.05 / 2.24 / 3.36 -> 3.42 / 2.26 /
        3.13 and 3.35 / 2.25 / 3.08; CRPS 2.67 / 1.60 / 2.25 -> 2.25 / 1.60 / 2.03; v1 bias
        -1.24 -> -0.99 points. Full fit, seeds 0-2: R-hat 1.014 / 1.010 / 1.009, min bulk
        ESS 771 / 604 / 802 (logistic: 1.008 / 1.008 / 1.013, 663 / 485 / 421), 0-17% slower.
        A power per benchmark (partially pooled, log-scale spread ~ Gamma(2) with mean 0.3;
        patch not kept) gained nothing at seed 0: MAE 3.18 / 2.24 / 2.81, 50% coverage 0.574 /
        0.604 / 0.603, and its plug-in forecasts (posterior-mean powers) were off by 4.1 /
        2.7 / 3.6 points.
    efficiency_df : the standardised family efficiencies (coarse-family and sub-family offsets,
        per skill) are Student-t with this many degrees of freedom (:func:`standard_prior`),
        and a family the fit never saw draws its efficiency from the same t; ``None``: normal.
        Default 4 since stop 21. Families are not all alike: code models (starcoder,
        deepseek-coder, starcoder2) sit 2-3 sd below the others on the HellaSwag skill
        (excess kurtosis 1.1 of the normal fit's efficiencies), and under a normal prior they
        widen the population's spread for every family and pull each family's estimate
        toward the mean. lofo-1 (2 x 200 draws, seed 0, one machine), v1 / v2 / all, normal ->
        t(4): MAE pooled 3.17 / 2.19 / 2.82 -> 2.95 / 2.12 / 2.68 points, groups 3.42 / 2.26 /
        3.13 -> 3.17 / 2.22 / 3.01, CRPS 2.25 / 1.60 / 2.03 -> 2.14 / 1.56 / 1.96, 90%
        coverage 0.940 / 0.944 / 0.944 -> 0.940 / 0.944 / 0.939, but 50% coverage 0.568 /
        0.597 / 0.582 -> 0.574 / 0.632 / 0.614 (the central intervals stay a little wide).
        Zero-shot (seed 0), v2 / all: MAE 2.67 / 3.88 -> 2.64 / 3.55, CRPS 2.01 / 2.86 -> 2.01
        / 2.71, 90% coverage 0.965 / 0.969 -> 0.960 / 0.956 (seed 1: MAE 2.59 / 3.54, 90%
        coverage 0.970 / 0.966: no closer to 0.95 than before). Full table, 4 x 1000, seed 0:
        R-hat 1.009, min bulk ESS 921 (normal: 1.008, 680), 174 s against 223 s.
    deviation_df : the standardised slope deviations ``z_slope`` are Student-t with this many
        degrees of freedom (a family that scales unlike the others is a tail, not a wider
        spread for all; a family the fit never saw draws its deviations from the same t);
        ``None`` (default): normal. Off: no gain beyond the sampler seed's noise. The full fit's
        posterior means of the tokens deviations have excess kurtosis 7.9 (size: 0.4). lofo-1
        (2 x 200 draws, seed 0, one machine), v1 / v2 / all, default -> ``deviation_df=4``:
        MAE 2.95 / 2.12 / 2.68 -> 3.06 / 2.17 / 2.73 points, CRPS 2.14 / 1.56 / 1.96 -> 2.19 /
        1.59 / 1.97, 50% coverage 0.574 / 0.632 / 0.614 -> 0.577 / 0.597 / 0.606, 90% 0.940 /
        0.944 / 0.939 -> 0.946 / 0.944 / 0.942; seed 1: MAE 2.99 / 2.16 / 2.71 -> 3.04 / 2.15 /
        2.72, 50% 0.586 / 0.639 / 0.627 -> 0.574 / 0.611 / 0.595, 90% 0.943 / 0.944 / 0.942 ->
        0.955 / 0.944 / 0.952: central intervals 0.01-0.035 narrower on v2 and all, still
        above 0.58, and no better forecasts.
    pure_anchors : each anchor loads 1 on its skill and 0 on every other (default since stop
        38), instead of the lower-triangular pattern (anchor ``a`` free on the skills before
        ``a``). Why: the triangular pattern fixes each skill's unit and sign but not its shear
        against the earlier skills (skill 4 plus ``c`` times skill 1 fits the data as well,
        with every loading on skill 1 moved by ``c`` times its loading on skill 4): only the
        priors choose it, and they chose two ways. On the full table IFEval (skill 4's
        anchor) loaded 1.6 on skill 1 in one mode and 0.6 in another, 11-15 log-density units
        lower; chains started at different SVI restarts stayed in their modes for 2,000
        iterations (R-hat 1.74), and the seed chose which mode a fit reported (3 of 12 fits:
        the main job's forecasts moved 0.72 points on average, 4.9 at most). On the test
        suite's simulated K=2 table the quick fit landed in a reflected skill 2 at 3 of 6 seeds
        (21-25 of 37 true values inside their 90% intervals). Pure anchors leave no rotation:
        the same simulated table recovers 32-33 of 36 at all 6 seeds, and on the full table
        chains started at different SVI restarts agree at 5 of 7 seeds; at the other two one
        chain, started from a restart whose loss was 5-13 nats worse than the best's, sat in a
        mode 30 log-density units lower (skill 4 with the v2 benchmarks' loadings reversed),
        which every default fit avoids by starting at the best restart. The cost is in how the
        priors see the skills (independent per skill, now in the anchors' own coordinates):
        PSIS-LOO on the full table prefers the triangular fit's first mode by 15.5 ELPD (SE
        9.8), 16 of it on IFEval; lofo-1 (2 x 200 draws, seed 0), v1 / v2 / all: MAE 2.92 /
        2.20 / 2.65 -> 2.95 / 2.55 / 2.76 points (IFEval 4.4 -> 6.3), 90% coverage 0.896 /
        0.938 / 0.915 -> 0.905 / 0.924 / 0.921. Full table, 4 x 1000, seeds 0-8: max R-hat
        1.0059-1.0098 at seven, 1.0101 and 1.0119 at seeds 5 and 7 (``sigma_bench[IFEval]``,
        the slowest quantity: min bulk ESS 430-656), no divergence, 83-92 s.
    correlated_sub : sub-family offsets are correlated across skills like
        ``correlated_efficiency`` makes the coarse ones (``z_sub = z' L^T``, ``L ~
        LKJCholesky(K, 2)``, ``sub_chol``). Off: with pure anchors and correlated coarse
        efficiencies it did not win back the triangular pattern's IFEval fit (PSIS-LOO -11.3
        against -10.2 ELPD without it, seed 1).
    folded_noise : sample each benchmark's additive noise as ``sigma_bench = |x|``, ``x ~
        N(0, bench_noise_scale)`` (exactly a half-normal prior, like ``folded_loadings``),
        instead of on the log scale under ``scale_prior``. Default since stop 39, with
        ``bench_noise_scale`` 0.02 (a half-normal of mean 0.016; before: Gamma(2) of mean
        0.01). Why: the additive term matters only near a benchmark's floor (elsewhere the
        logit-scale noise is larger), so the data bound it from above and leave its lower
        side to the prior; on the log scale that lower side is a long tail, and with pure
        anchors IFEval's (0.025, 90% in 0.004-0.047, traded against its logit-scale noise and
        learned floor) was the slowest quantity of the fit: min bulk ESS 430-656, R-hat
        1.0101 / 1.0119 at seeds 5 / 7. Folded, on the linear scale, the same quantity is a
        bounded hump: full table, 4 x 1000, seed 7: its bulk ESS 472 -> 1553, R-hat 1.0119 ->
        1.0012 (the wider Gamma prior alone, on the log scale: 901, 1.0031). Seeds 0-8: max
        R-hat 1.0084 / 1.0102 / 1.0068 / 1.0076 / 1.0069 / 1.0077 / 1.008 / 1.0067 / 1.0073,
        min bulk ESS 729-1129 (``sigma_sub[skill_3]`` at five seeds), no divergence,
        90-96 s. Seed 1's 1.0102 is the folded (scale) R-hat of ``z_sub[open_llama__v2,
        skill_3]``, an offset the data leave at its t(4) prior (bulk ESS 5234, bulk R-hat
        1.0005): a coarse family with one sub-family, whose efficiency only the priors split
        between the two offsets (README, Convergence, stop 39; stop 40's attempts at it). IFEval's
        noise moves with the prior (0.025 -> 0.041, its logit-scale noise 0.44 -> 0.33) and
        so do its forecasts: lofo-1 (2 x 200 draws, seed 0), v1 / v2 / all MAE 2.95 / 2.55 /
        2.76 -> 2.98 / 2.38 / 2.71 points (IFEval 6.3 -> 5.5), 90% coverage 0.905 / 0.924 /
        0.921 -> 0.911 / 0.938 / 0.923.
    rounded_scores : read each benchmark's recorded scores as rounded to the step they sit on
        (:func:`data.rounding_step`, found in the training table and kept in the fit's
        encoding): the leaderboard's v2 columns are whole percents, and MATH Lvl 5 reads 0.00,
        0.01 or 0.02 for 56 of its 85 models, a rounding as wide as the noise there. A
        recorded 0 is then any score below half a step, not a score of exactly 0 (see
        :class:`CensoredNormal`). Forecasts are of the score itself, unrounded. ``False``
        (and fits saved before the option): every score exact.
    scale_prior : prior of every spread (``sigma_*``, ``tau_slope``): ``"gamma"``, Gamma(2,
        2 / scale) with mean ``scale`` and no mass at 0, or ``"half_normal"`` (scale
        ``scale``). The half-normal's mode at 0 let small spreads (ARC's profile scale,
        MMLU-PRO's additive noise) reach into funnels where the chains crawl: with anchor
        profiles, min bulk ESS 182 -> 383, total fit time 173 -> 144 s.
    """

    n_skills: int = 4
    anchors: tuple[str, ...] | None = None
    slope_deviations: bool = True
    llm_residual: bool = False
    loading_scale: float = 1.0
    coarse_scale: float = 2.0
    slope_scale: float = 1.0
    difficulty_scale: float = 2.0
    instruct_scale: float = 1.0
    sub_scale: float = 0.5
    llm_scale: float = 0.3
    deviation_scale: float = 0.2
    bench_noise_scale: float = 0.02
    family_bench: str = "coarse"  # "none" | "coarse" | "sub" | "nested"
    family_bench_scale: float = 0.5
    instruct_bench: bool = True
    instruct_bench_scale: float = 0.5
    size_curvature: bool = False
    curvature_scale: float = 0.25
    logit_noise: bool = True
    logit_noise_scale: float = 0.5
    profile_anchors: bool = True
    scale_prior: str = "gamma"  # "half_normal" | "gamma"
    folded_loadings: bool = True
    signed_loadings: bool = True
    deviation_per_skill: bool = False
    interaction_deviation: bool = False
    deviation_growth: str = "sqrt"  # "linear" | "sqrt"
    deviation_knee: float = 0.125
    instruct_noise: bool = False
    instruct_noise_scale: float = 0.5
    correlated_efficiency: bool = False
    correlated_sub: bool = False
    floor_lift: tuple[str, ...] = ("rules",)
    floor_lift_scale: float = 0.2
    link_power: bool = True
    link_power_scale: float = 1.0
    efficiency_df: float | None = 4.0
    deviation_df: float | None = None
    rounded_scores: bool = True
    pure_anchors: bool = True
    folded_noise: bool = True

    def __post_init__(self):
        for name, allowed in (
            ("family_bench", FAMILY_BENCH),
            ("scale_prior", SCALE_PRIORS),
            ("deviation_growth", DEVIATION_GROWTH),
        ):
            if getattr(self, name) not in allowed:
                raise ValueError(f"ModelConfig({name}={getattr(self, name)!r}): use one of {allowed}.")
        if isinstance(self.floor_lift, (str, bool)) or not set(self.floor_lift) <= set(ANSWER_KINDS):
            raise ValueError(
                f"ModelConfig(floor_lift={self.floor_lift!r}): give a tuple of answer kinds from "
                f"{ANSWER_KINDS}, e.g. ('rules',), or () for the chance levels everywhere."
            )

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        d = dict(d)
        # fits saved before an option existed were fitted without it: keep what they were
        d.setdefault("logit_noise", False)
        d.setdefault("profile_anchors", False)
        d.setdefault("scale_prior", "half_normal")
        d.setdefault("folded_loadings", False)
        d.setdefault("signed_loadings", False)
        d.setdefault("deviation_per_skill", False)
        d.setdefault("interaction_deviation", True)
        d.setdefault("deviation_growth", "linear")
        d.setdefault("instruct_noise", False)
        d.setdefault("correlated_efficiency", False)
        d.setdefault("correlated_sub", False)
        d.setdefault("pure_anchors", False)
        d.setdefault("folded_noise", False)
        d.setdefault("link_power", False)
        d.setdefault("efficiency_df", None)
        d.setdefault("deviation_df", None)
        d.setdefault("rounded_scores", False)
        # floor_lift was a switch (True: every benchmark but the exact-answer ones)
        lift = d.get("floor_lift", ())
        d["floor_lift"] = ("choice", "rules") if lift is True else tuple(lift or ())
        unknown = sorted(set(d) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(
                f"the stored model configuration has options this version of sloth_bayes does "
                f"not know: {unknown}. Load the fit with the version that wrote it."
            )
        if d.get("anchors") is not None:
            d["anchors"] = tuple(d["anchors"])
        return cls(**d)


@dataclass
class Encoding:
    """Everything needed to map a table onto model indices, and back (stored in fits)."""

    llms: list[str]
    subfamilies: list[str]
    coarse: list[str]
    sub_coarse: list[int]
    benchmarks: list[str]
    floor: list[float]
    n_items: list[float]
    anchors: list[str]
    size_loc: float
    size_scale: float
    tokens_loc: float
    tokens_scale: float
    # Prior of a missing log-token count, per coarse family (standardised units).
    coarse_tokens_loc: dict[str, float] = field(default_factory=dict)
    coarse_tokens_scale: dict[str, float] = field(default_factory=dict)
    # Mean standardised covariates of each coarse family's fitted LLMs: the point its slope
    # deviations pivot on (a family absent here pivots on the population mean, 0).
    coarse_x_centre: dict[str, list[float]] = field(default_factory=dict)
    # Lowest / highest standardised covariates of each coarse family's fitted LLMs: the range
    # inside which a ``deviation_growth="sqrt"`` deviation is linear (absent: the pivot).
    coarse_x_low: dict[str, list[float]] = field(default_factory=dict)
    coarse_x_high: dict[str, list[float]] = field(default_factory=dict)
    # z_size^2 minus its least-squares line in z_size over the fitted LLMs (see size_bend)
    bend_loc: float = 0.0
    bend_slope: float = 0.0
    # Benchmarks whose floor the fit learns: their ``answer`` kind (benchmark metadata) is in
    # ``ModelConfig.floor_lift``; empty in fits saved before the option.
    floor_learned: list[bool] = field(default_factory=list)
    # Step each benchmark's training scores were rounded to (:func:`data.rounding_step`; 0:
    # exact); empty in fits saved before scores were read as rounded.
    score_step: list[float] = field(default_factory=list)
    # Each anchor loads on its own skill only (``ModelConfig.pure_anchors``); False in fits
    # saved before the option (lower triangular).
    pure_anchors: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


class ModelData(NamedTuple):
    """Arrays the model function reads. Shapes: N LLMs, S sub-families, J benchmarks, O cells."""

    size_z: np.ndarray  # (N,)
    size_bend: np.ndarray  # (N,) curvature covariate (size_bend)
    tokens_z: np.ndarray  # (N,) 0 where missing
    tokens_missing: np.ndarray  # (M,) int rows whose token count is latent
    tokens_group: np.ndarray  # (M,) int: the shared latent count of each such row
    tokens_prior_loc: np.ndarray  # (L,) prior of each shared latent count
    tokens_prior_scale: np.ndarray  # (L,)
    sub: np.ndarray  # (N,) int
    coarse: np.ndarray  # (N,) int
    sub_coarse: np.ndarray  # (S,) int
    instruct: np.ndarray  # (N,) float
    x_fill: np.ndarray  # (N, 3) covariates, unknown tokens at their prior centre (family pivots)
    floor: np.ndarray  # (J,)
    inv_items: np.ndarray  # (J,) 1 / n_items (0 when unknown)
    loading_mask: np.ndarray  # (J, K) 1 where a loading is free
    obs_row: np.ndarray  # (O,) int
    obs_col: np.ndarray  # (O,) int
    y: np.ndarray  # (O,)
    boundary: np.ndarray  # (B,) int cells whose score is exactly 0 or 1
    n_coarse: int
    cell_mask: np.ndarray | None = None  # (O,) bool: cells in the likelihood (None = all)
    lifted: np.ndarray | None = None  # (L,) int benchmarks whose floor is learned (floor_lift)
    # (pivot, low, high) of the slope deviations, each (C, 3) (deviation_pivots); None: from
    # the data above
    frame: tuple | None = None
    step: np.ndarray | None = None  # (J,) rounding step of each benchmark's scores (0: exact)
    # site -> centredness (G, K) in [0, 1] of the family offsets (pinned_offsets; keys of
    # CENTRED_SITES); None: non-centred
    centring: dict | None = None


def _pick_anchors(benchmarks: list[str], k: int, anchors: tuple[str, ...] | None) -> list[str]:
    pref = list(anchors) if anchors is not None else list(ANCHOR_PREFERENCE)
    chosen = [b for b in pref if b in benchmarks][:k]
    for b in benchmarks:  # fall back on table order
        if len(chosen) >= k:
            break
        if b not in chosen:
            chosen.append(b)
    if len(chosen) < k:
        raise ValueError(
            f"{k} skills need at least {k} benchmarks; the table has {len(benchmarks)}. Fit fewer "
            f"skills: `--skills {len(benchmarks)}` (ModelConfig(n_skills={len(benchmarks)}))."
        )
    return chosen


def folds_loadings(config: ModelConfig) -> bool:
    """Whether the free loadings are sampled folded (``loadings_unfolded``, ``|x|`` their
    value): non-negative loadings (``signed_loadings`` off) with ``folded_loadings``."""
    return config.folded_loadings and not config.signed_loadings


def loading_mask(benchmarks: list[str], anchors: list[str], k: int, pure: bool = False) -> np.ndarray:
    """Loading pattern: 1 = free, 0 = fixed at 0, 2 = fixed at 1.

    The a-th anchor benchmark loads exactly 1 on skill ``a`` (the skill's unit and sign: more
    skill, higher anchor score) and 0 on later skills (lower-triangular), or with ``pure`` on
    every other skill (each skill is its anchor's logit: see ``ModelConfig.pure_anchors``).
    """
    mask = np.ones((len(benchmarks), k))
    for a, name in enumerate(anchors):
        row = benchmarks.index(name)
        mask[row, a + 1 :] = 0.0
        if pure:
            mask[row, :a] = 0.0
        mask[row, a] = 2.0
    return mask


def make_encoding(table: pd.DataFrame, bench_meta: pd.DataFrame, config: ModelConfig) -> Encoding:
    """Index families and benchmarks, and fix the covariate standardisation of a training table."""
    benchmarks = list(bench_meta.index)
    subs = list(pd.unique(table[SUBFAMILY].astype(str)))
    sub_to_coarse = table.groupby(SUBFAMILY, sort=False)[FAMILY].agg(lambda s: s.iloc[0])
    coarse = list(pd.unique(table[FAMILY].astype(str)))
    log_s = np.log(table[SIZE].to_numpy(float))
    log_t = np.log(table[TOKENS].to_numpy(float))
    t_ok = np.isfinite(log_t)
    size_loc, size_scale = float(log_s.mean()), float(log_s.std() or 1.0)
    if t_ok.sum() >= 2:
        tokens_loc, tokens_scale = float(log_t[t_ok].mean()), float(log_t[t_ok].std() or 1.0)
    else:
        tokens_loc, tokens_scale = 0.0, 1.0
    tz = (log_t - tokens_loc) / tokens_scale
    c_loc, c_scale = {}, {}
    for c, grp in pd.Series(tz).groupby(table[FAMILY].astype(str).to_numpy()):
        vals = grp[np.isfinite(grp)]
        if len(vals):
            # a family's token counts vary within it: keep the prior wide (half the population sd)
            c_loc[c], c_scale[c] = float(vals.mean()), 0.5
    enc = Encoding(
        llms=list(table[MODEL].astype(str)),
        subfamilies=subs,
        coarse=coarse,
        sub_coarse=[coarse.index(str(sub_to_coarse[s])) for s in subs],
        benchmarks=benchmarks,
        floor=[float(v) for v in bench_meta["floor"]],
        n_items=[float(v) for v in bench_meta["n_items"]],
        floor_learned=[str(a) in config.floor_lift for a in bench_meta.get("answer", [""] * len(benchmarks))],
        score_step=[rounding_step(table[b]) if b in table else 0.0 for b in benchmarks],
        anchors=_pick_anchors(benchmarks, config.n_skills, config.anchors),
        pure_anchors=config.pure_anchors,
        size_loc=size_loc,
        size_scale=size_scale,
        tokens_loc=tokens_loc,
        tokens_scale=tokens_scale,
        coarse_tokens_loc=c_loc,
        coarse_tokens_scale=c_scale,
    )
    enc.coarse_x_centre = family_centres(table, enc)
    enc.coarse_x_low, enc.coarse_x_high = family_ranges(table, enc)
    size_z = (log_s - size_loc) / size_scale
    enc.bend_loc, enc.bend_slope = float(np.mean(size_z**2)), float(np.mean(size_z**3))
    return enc


def size_bend(enc: Encoding, size_z):
    """The curvature covariate: ``z_size^2`` minus its least-squares line in ``z_size`` over
    the fitted LLMs (``mean z^2 + mean z^3 * z``: z is standardised). Orthogonal to the
    intercept and the size slope, the curvature does not trade off against them: a plain
    ``z^2`` shares a ridge with the difficulties and the slopes that NUTS crosses slowly."""
    return size_z**2 - (enc.bend_loc + enc.bend_slope * size_z)


def standardise(enc: Encoding, size, tokens) -> tuple[np.ndarray, np.ndarray]:
    """Standardised log size and log tokens (NaN where tokens are unknown)."""
    size_z = (np.log(np.asarray(size, float)) - enc.size_loc) / enc.size_scale
    tokens_z = (np.log(np.asarray(tokens, float)) - enc.tokens_loc) / enc.tokens_scale
    return size_z, tokens_z


def tokens_prior(enc: Encoding, families) -> tuple[np.ndarray, np.ndarray]:
    """Prior (loc, scale) of standardised log tokens for LLMs whose count is unknown."""
    loc = np.array([enc.coarse_tokens_loc.get(str(f), 0.0) for f in families])
    scale = np.array([enc.coarse_tokens_scale.get(str(f), 1.0) for f in families])
    return loc, scale


def latent_tokens(table: pd.DataFrame, enc: Encoding):
    """Standardised covariates of a table's LLMs with their unknown token counts: returns
    ``size_z``, ``tokens_z`` (NaN where unknown), the unknown rows and their prior loc/scale.

    A model whose count is unknown but whose sibling (same coarse family, same size, e.g.
    the base model of an instruct fine-tune) has one was pretrained on the same data: its
    prior is centred there, tightly. Otherwise the family's intercept and its unknown counts
    trade off along a ridge that NUTS crosses slowly.
    """
    size_z, tokens_z = standardise(enc, table[SIZE], table[TOKENS])
    missing = np.flatnonzero(~np.isfinite(tokens_z))
    loc, scale = tokens_prior(enc, table[FAMILY].iloc[missing])
    family, size = table[FAMILY].astype(str).to_numpy(), table[SIZE].to_numpy(float)
    for m, i in enumerate(missing):
        sib = (family == family[i]) & (size == size[i]) & np.isfinite(tokens_z)
        if sib.any():
            loc[m], scale[m] = float(np.mean(tokens_z[sib])), SIBLING_TOKENS_SCALE
    return size_z, tokens_z, missing, loc, scale


def token_groups(table: pd.DataFrame, missing) -> np.ndarray:
    """(M,) group index of each row whose count is unknown: rows of one coarse family and one
    size share a latent count (a base model and its instruct/chat versions were pretrained
    on the same data; two latents would only add a ridge along which NUTS crawls)."""
    family, size = table[FAMILY].astype(str).to_numpy(), table[SIZE].to_numpy(float)
    keys = list(zip(family[missing], size[missing]))
    first = {k: g for g, k in enumerate(dict.fromkeys(keys))}
    return np.array([first[k] for k in keys], dtype=int)


def token_group_labels(data: "ModelData", llms) -> list[str]:
    """Coordinates of the shared latent counts: their LLMs' names joined with ``+``."""
    missing, group = np.asarray(data.tokens_missing), np.asarray(data.tokens_group)
    return ["+".join(str(llms[i]) for i in missing[group == g]) for g in np.unique(group)]


def _scored_covariates(table: pd.DataFrame, enc: Encoding):
    """Covariates (unknown tokens at their prior centre) of the LLMs with at least one
    score, and their coarse families."""
    size_z, tokens_z, missing, loc, _ = latent_tokens(table, enc)
    tokens_z = tokens_z.copy()
    tokens_z[missing] = loc
    x = np.stack([size_z, tokens_z, size_z * tokens_z], axis=-1)
    scored = np.isfinite(table[enc.benchmarks].to_numpy(float)).any(axis=1)
    return x[scored], table[FAMILY].astype(str).to_numpy()[scored]


def family_centres(table: pd.DataFrame, enc: Encoding) -> dict[str, list[float]]:
    """Mean covariates of each coarse family's LLMs with at least one score: the numpy twin
    of the pivots :func:`skills_model` computes."""
    x, fam = _scored_covariates(table, enc)
    return {c: [float(v) for v in x[fam == c].mean(0)] for c in pd.unique(fam)}


def family_ranges(table: pd.DataFrame, enc: Encoding) -> tuple[dict, dict]:
    """Lowest and highest covariates of each coarse family's LLMs with at least one score:
    the numpy twin of the ranges :func:`skills_model` computes."""
    x, fam = _scored_covariates(table, enc)
    edges = [{c: [float(v) for v in f(x[fam == c], axis=0)] for c in pd.unique(fam)} for f in (np.min, np.max)]
    return edges[0], edges[1]


def deviation_frame(enc: Encoding, coarse_names) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(G, 3) pivots of the slope deviations of coarse families by name, and the lowest and
    highest covariates of their fitted LLMs relative to the pivots (the range inside which a
    tempered deviation is linear). A family the fit has not seen pivots on the population
    mean, 0; a family without a stored range (a fit saved before ranges were) has a point
    range at its pivot."""
    pivot = np.array([enc.coarse_x_centre.get(str(c), [0.0, 0.0, 0.0]) for c in coarse_names]).reshape(-1, 3)
    low, high = (
        np.array([stored.get(str(c), p) for c, p in zip(coarse_names, pivot)]).reshape(-1, 3) - pivot
        for stored in (enc.coarse_x_low, enc.coarse_x_high)
    )
    return pivot, low, high


def encode(table: pd.DataFrame, enc: Encoding, n_skills: int) -> ModelData:
    """Arrays for :func:`skills_model` from a validated training table."""
    size_z, tokens_z, missing, loc, scale = latent_tokens(table, enc)
    group = token_groups(table, missing)
    first = np.unique(group, return_index=True)[1]  # groups are numbered by first row
    t_fill = tokens_z.copy()
    t_fill[missing] = loc
    y = table[enc.benchmarks].to_numpy(float)
    rows, cols = np.nonzero(np.isfinite(y))
    inv_items = np.array([1.0 / n if np.isfinite(n) and n > 0 else 0.0 for n in enc.n_items])
    return ModelData(
        size_z=size_z,
        size_bend=size_bend(enc, size_z),
        tokens_z=np.nan_to_num(tokens_z),
        tokens_missing=missing,
        tokens_group=group,
        # one size of one family: the same prior (sibling's or family's) for the whole group
        tokens_prior_loc=loc[first],
        tokens_prior_scale=scale[first],
        sub=np.array([enc.subfamilies.index(s) for s in table[SUBFAMILY].astype(str)]),
        coarse=np.array([enc.coarse.index(c) for c in table[FAMILY].astype(str)]),
        sub_coarse=np.array(enc.sub_coarse),
        instruct=table[INSTRUCT].to_numpy(float),
        x_fill=np.stack([size_z, t_fill, size_z * t_fill], axis=-1),
        floor=np.array(enc.floor),
        inv_items=inv_items,
        loading_mask=loading_mask(enc.benchmarks, enc.anchors, n_skills, enc.pure_anchors),
        obs_row=rows,
        obs_col=cols,
        y=y[rows, cols],
        boundary=np.flatnonzero((y[rows, cols] <= 0.0) | (y[rows, cols] >= 1.0)),
        n_coarse=len(enc.coarse),
        lifted=np.flatnonzero(np.asarray(enc.floor_learned, bool)),
        step=np.array(enc.score_step or [0.0] * len(enc.benchmarks), dtype=float),
    )


def covariates(size_z, tokens_z):
    """Design ``(z_size, z_tokens, z_size * z_tokens)``, last axis of length 3."""
    return jnp.stack([size_z, tokens_z, size_z * tokens_z], axis=-1)


def benchmark_mean(theta, loadings, difficulty, floor, offset=0.0, power=1.0):
    """Expected score: chance floor plus the rest of the scale times the link of skills
    (``offset``: benchmark-specific logit terms of an LLM, shape ``(..., n, j)``; ``power``:
    see :func:`link`)."""
    logit = jnp.einsum("...nk,...jk->...nj", theta, loadings) + difficulty[..., None, :] + offset
    return floor + (1.0 - floor) * link(logit, power)


def link(logit, power=1.0):
    """``sigmoid(logit) ** power``: the logistic for ``power = 1``; above 1 its lower tail
    falls ``power`` times faster than its upper tail rises (a model far below a benchmark's
    difficulty sits at chance sooner), ``ModelConfig.link_power``."""
    if _logistic(power):
        return jax_sigmoid(logit)
    return jnp.exp(power * jax.nn.log_sigmoid(logit))


def _logistic(power) -> bool:
    """Whether ``power`` is the constant 1 (no learned power): the plain logistic's path."""
    return isinstance(power, (int, float)) and power == 1.0


def learns_floor(config: ModelConfig, data: ModelData) -> bool:
    """Whether a fit learns any floor: ``ModelConfig.floor_lift`` names the answer kind of
    one of its benchmarks (otherwise it has no ``floor_lift`` site at all)."""
    return bool(config.floor_lift) and data.lifted is not None and len(data.lifted) > 0


def lifted_floor(chance, lift):
    """A benchmark's lower asymptote: its chance level raised by ``lift`` of the rest of the
    scale (``ModelConfig.floor_lift``); ``lift = 0`` is the chance level itself."""
    return chance + (1.0 - chance) * lift


def effective_floor(post, chance):
    """The floors a fit used: per draw, ``(S, 1, J)`` (broadcast over models), when it
    learned them (``floor_lift`` in ``post``), else the chance levels ``(J,)``."""
    chance = np.asarray(chance, dtype=float)
    if "floor_lift" not in post:
        return chance
    return np.asarray(lifted_floor(chance, np.asarray(post["floor_lift"])))[:, None, :]


def jax_sigmoid(x):
    return 0.5 * (jnp.tanh(0.5 * x) + 1.0)


def observation_sd(mu, inv_items, sigma_bench, floor=0.0, sigma_logit=0.0, power=1.0, logit=None):
    """Noise sd: binomial floor from the item count plus benchmark over-dispersion, additive
    (``sigma_bench``) and on the logit scale (``sigma_logit`` times the slope of the score in
    the logit: ``power * (mu - floor) * (1 - sigmoid(logit))`` for :func:`link`'s power, which
    is ``(mu - floor)(1 - mu)/(1 - floor)`` for the logistic: small near the floor and the
    ceiling). Without the ``logit`` the slope is rebuilt from ``mu`` (``sigmoid(logit) =
    g ** (1 / power)``, ``g`` the link's value); the model passes it (no power per cell, and
    float32 keeps the slope of a score within a few ulps of its floor)."""
    if logit is not None:
        slope = power * (mu - floor) * jax_sigmoid(-logit)
    elif _logistic(power):
        slope = (mu - floor) * (1.0 - mu) / (1.0 - floor)
    else:
        g = jnp.clip((mu - floor) / (1.0 - floor), 1e-30, 1.0)
        slope = power * (mu - floor) * (1.0 - g ** (1.0 / power))
    return jnp.sqrt(mu * (1.0 - mu) * inv_items + sigma_bench**2 + (sigma_logit * slope) ** 2)


class CensoredNormal(dist.Distribution):
    """``clip(Normal(loc, scale), 0, 1)``: point masses at 0 and 1, a density in between.

    ``half_step`` (per value, or 0): the recorded score was rounded to a step of twice that
    (``ModelConfig.rounded_scores``). A rounded 0 is then any score below ``half_step`` (the
    point mass at 0 and the density up to it: ``P(Y < half_step)``), a rounded 1 any above
    ``1 - half_step``, and an interior value has the density of the score plus the rounding
    error, uniform over the step: its variance ``step^2 / 12`` is added to ``scale^2``
    (Sheppard's correction; exact to ``O((step / scale)^4)``, without the two normal CDFs per
    cell an interval probability would cost)."""

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.unit_interval
    reparametrized_params = ["loc", "scale"]

    def __init__(self, loc, scale, *, boundary=None, half_step=0.0, validate_args=None):
        # ``boundary``: indices of the values at exactly 0 or 1, when known in advance (the
        # observed data); only those need the costly normal log-CDF.
        self.loc, self.scale, self.boundary, self.half_step = loc, scale, boundary, half_step
        batch_shape = jnp.broadcast_shapes(jnp.shape(loc), jnp.shape(scale))
        super().__init__(batch_shape=batch_shape, validate_args=validate_args)

    def sample(self, key, sample_shape=()):
        base = dist.Normal(self.loc, self.scale).sample(key, sample_shape)
        return jnp.clip(base, 0.0, 1.0)

    def log_prob(self, value):
        h = jnp.broadcast_to(jnp.asarray(self.half_step, dtype=jnp.result_type(float)), jnp.shape(value))
        dens = dist.Normal(self.loc, jnp.sqrt(self.scale**2 + h**2 / 3.0)).log_prob(value)
        if self.boundary is None:
            z = (value + jnp.where(value <= 0.0, h, -h) - self.loc) / self.scale
            tail = log_ndtr(jnp.where(value <= 0.0, z, -z))
            return jnp.where((value <= 0.0) | (value >= 1.0), tail, dens)
        b = self.boundary
        zero = value[b] <= 0.0
        z = (value[b] + jnp.where(zero, h[b], -h[b]) - self.loc[b]) / self.scale[b]
        return dens.at[b].set(log_ndtr(jnp.where(zero, z, -z)))


def logit_noise_sd(sigma_logit, instruct, instruct_noise=None):
    """Logit-scale noise sd: ``sigma_logit`` times ``exp(instruct_noise)`` for instruct/chat
    models (``instruct`` 0/1), or ``sigma_logit`` itself without the option
    (``instruct_noise=None``). The three arguments come aligned by the caller (per cell, or
    broadcast to (..., N, J)), so the default costs nothing on the model's hot path."""
    if instruct_noise is None:
        return sigma_logit
    return sigma_logit * jnp.exp(instruct * instruct_noise)


def scale_prior(scale, config: ModelConfig) -> dist.Distribution:
    """Prior of a spread (hierarchical scale or over-dispersion) with prior mean ~``scale``:
    half-normal, or ``"gamma"``: Gamma(2, 2 / scale), whose density vanishes at 0 (a
    boundary-avoiding prior: a spread that the data put near zero does not pull NUTS into
    the neck of a funnel, where its chains crawl)."""
    if config.scale_prior == "gamma":
        return dist.Gamma(2.0, 2.0 / scale)
    return dist.HalfNormal(scale)


#: The standardised family offsets and the spread each one scales (:func:`pinned_offsets`).
CENTRED_SITES = {"z_coarse": "sigma_coarse", "z_sub": "sigma_sub"}
#: The Cholesky factor of each family offset's correlation across skills, when correlated
#: (``ModelConfig.correlated_efficiency``, ``correlated_sub``).
CHOL_SITES = {"z_coarse": "efficiency_chol", "z_sub": "sub_chol"}


def correlate(z, chol):
    """``z L^T`` (..., G, K): family offsets correlated across skills as ``L L^T`` from
    i.i.d. ones ``z`` (``chol``: ``L``, (..., K, K); ``None``: ``z`` unchanged)."""
    return z if chol is None else z @ jnp.swapaxes(chol, -1, -2)


def decorrelate(z, chol):
    """The i.i.d. offsets behind correlated ones: the inverse of :func:`correlate`."""
    if chol is None:
        return z
    return jnp.swapaxes(jax.scipy.linalg.solve_triangular(chol, jnp.swapaxes(z, -1, -2), lower=True), -1, -2)


def loadings_matrix(free, mask) -> jnp.ndarray:
    """(..., J, K) loadings: the free ones (..., F) where ``mask`` is 1, 1 where it is 2 (an
    anchor on its skill), 0 elsewhere."""
    free = jnp.asarray(free)
    out = jnp.broadcast_to(jnp.asarray(np.where(mask == 2.0, 1.0, 0.0), free.dtype), free.shape[:-1] + mask.shape)
    return out.at[(..., *np.nonzero(mask == 1.0))].set(free)


def anchor_block(loadings, mask) -> jnp.ndarray:
    """(..., K, K) the anchor benchmarks' loadings, row ``k`` the anchor of skill ``k``: unit
    lower triangular (each anchor loads 1 on its skill, 0 on later ones; the identity with
    ``pure_anchors``)."""
    rows = np.argmax(np.asarray(mask) == 2.0, axis=0)
    return loadings[..., rows, :]


def coarse_pivot_skills(data: "ModelData", slopes) -> jnp.ndarray:
    """(..., C, K) the shared slopes' part of each coarse family's skills at its pivot
    (:func:`deviation_pivots`)."""
    return jnp.einsum("cd,...dk->...ck", jnp.asarray(deviation_pivots(data)[0], jnp.float32), slopes)


def sub_pivot_skills(data: "ModelData", slopes) -> jnp.ndarray:
    """(..., S, K) the shared slopes' part of each sub-family's skills at its own pivot (the
    mean covariates of its LLMs in the likelihood) beyond its coarse family's pivot: what a
    sub-family's offset adds to pin its own models (0 for a sub-family without any)."""
    sub, n_sub = np.asarray(data.sub), data.sub_coarse.shape[0]
    seen = _family_weights(data, sub, n_sub).any(0)[:, None]
    own = _pivots(data, sub, n_sub)
    diff = np.where(seen, own - deviation_pivots(data)[0][np.asarray(data.sub_coarse)], 0.0)
    return jnp.einsum("sd,...dk->...sk", jnp.asarray(diff, jnp.float32), slopes)


def pinned_shift(alpha, pivot_skills, anchors):
    """What the data add to family offsets ``alpha`` (..., G, K) (coarse efficiencies, or
    sub-family offsets from them) to give what they pin: the offsets' anchor logits at the
    family's pivot, ``(alpha + pivot_skills) @ anchors^T``,
    minus ``alpha`` (``anchors``: :func:`anchor_block`). Skill ``k``'s shift uses skills
    ``< k`` only (the block is unit lower triangular)."""
    return jnp.einsum("...ck,...jk->...cj", alpha + pivot_skills, anchors) - alpha


def unpin(v, c, pivot_skills, anchors):
    """The offsets ``alpha`` (..., G, K) from ``v = alpha + c * pinned_shift(alpha)``:
    solved skill by skill (skill ``k``'s shift uses skills ``< k`` only)."""
    alpha = []
    for j in range(v.shape[-1]):
        shift = pivot_skills[..., j] + sum(anchors[..., j, i, None] * (alpha[i] + pivot_skills[..., i])
                                           for i in range(j))
        alpha.append(v[..., j] - c[..., j] * shift)
    return jnp.stack(alpha, -1)


def pinned_offsets(name: str, plate: str, df: float | None, spread, c, pivot_skills, anchors, chol=None):
    """Standardised family offsets ``z`` (G, K) of a spread ``sigma`` (K,), sampled (site
    ``name``, plate ``plate``) in the coordinates ``w = (alpha + c shift) / sigma**(1 - c)``,
    ``alpha = sigma z``, ``shift`` the :func:`pinned_shift`, ``c`` (G, K) in [0, 1].

    ``c = 0`` is the non-centred form (``w = z``); ``c = 1`` the centred one, where ``w`` is
    what the family's models pin: its anchor logits at its pivot (a coarse family:
    :func:`coarse_pivot_skills`; a sub-family, whose offset is relative to its coarse
    family's: :func:`sub_pivot_skills`); values between interpolate (Papaspiliopoulos, Roberts
    and Skold 2007; Gorinova, Moore and Hoffman 2020). The prior of ``z`` is the same for every
    ``c``: only the coordinates NUTS moves in change. Why: a family the data pin has its anchor
    logits fixed, so in the non-centred form ``z`` and ``sigma`` lie on a curved ridge (``z ~ 1
    / sigma``) that a diagonal mass cannot follow, and so do ``z`` and the shared slopes (most
    families train every model on one token count) and ``z`` and the anchors' loadings on
    earlier skills (a rotation of the skills: HellaSwag's loading on skill 1 moves phi's skill
    3); centred, each is straight or gone. A family the data barely see is a funnel in the
    centred form: its ``c`` stays near 0 (:func:`centredness`). The map ``w -> z`` is
    triangular (skill by skill) with Jacobian ``prod sigma^-c``.

    With ``chol`` (K, K), the Cholesky factor of the offsets' correlation
    (``ModelConfig.correlated_efficiency``, ``correlated_sub``), ``z = z' L^T`` with ``z'``
    i.i.d.: ``z`` is
    returned (``alpha = sigma z`` as above) and the prior is that of ``z' = z L^-T``, Jacobian
    ``prod diag(L)^-1`` per group."""
    k = spread.shape[-1]
    with numpyro.plate(plate, c.shape[0], dim=-2), numpyro.plate("skill", k, dim=-1):
        w = numpyro.sample(name, dist.ImproperUniform(constraints.real, (), ()))
    z = unpin(w * spread ** (1.0 - c), c, pivot_skills, anchors) / spread
    log_jac = -jnp.sum(c * jnp.log(spread))
    if chol is not None:
        log_jac = log_jac - c.shape[0] * jnp.sum(jnp.log(jnp.diagonal(chol)))
    numpyro.factor(f"{name}_prior", jnp.sum(standard_prior(df).log_prob(decorrelate(z, chol))) + log_jac)
    return z


def centredness(z_draws) -> np.ndarray:
    """``c`` (G, K) for :func:`pinned_offsets` from posterior draws (..., G, K) of the
    non-centred ``z``: ``1 - var(z)``, clipped to [0, 1]. For normal offsets this is the
    optimal ``c`` (the share of an offset's prior variance that the data remove:
    ``sigma^2 / (sigma^2 + s^2)``, ``s`` the data's standard error of the offset, since
    ``var(z) = s^2 / (sigma^2 + s^2)``): 0 for an offset the data leave at its prior, 1 for
    one they pin."""
    z = np.asarray(z_draws, float)
    return np.clip(1.0 - z.reshape(-1, *z.shape[-2:]).var(axis=0), 0.0, 1.0).astype(np.float32)


def recentre(sites: dict, centring: dict, data: "ModelData", inverse: bool = False) -> dict:
    """The offsets of :data:`CENTRED_SITES` in ``sites`` (constrained values of the model's
    sites and ``loadings``, any leading batch axes) mapped from ``z`` to the sampled
    coordinates ``w`` of :func:`pinned_offsets`, or back with ``inverse``; ``c =
    centring[site]``. Returns only the mapped sites."""
    anchors = anchor_block(sites["loadings"], data.loading_mask)
    out = {}
    for name, pivot in (("z_coarse", coarse_pivot_skills(data, sites["slopes"])),
                        ("z_sub", sub_pivot_skills(data, sites["slopes"]))):
        sigma, c = sites[CENTRED_SITES[name]][..., None, :], centring[name]
        # the sampled (i.i.d.) coarse offsets of correlated efficiencies: z = z' L^T
        chol = sites.get(CHOL_SITES[name])
        if inverse:
            out[name] = decorrelate(unpin(sites[name] * sigma ** (1.0 - c), c, pivot, anchors) / sigma, chol)
        else:
            alpha = sigma * correlate(sites[name], chol)
            out[name] = (alpha + c * pinned_shift(alpha, pivot, anchors)) / sigma ** (1.0 - c)
    return out


def folded_half_normal(raw_name: str, name: str, scale):
    """A half-normal site sampled folded: ``name = |x|`` (deterministic), ``x ~ N(0,
    scale)`` sampled as ``raw_name`` (``ModelConfig.folded_loadings``, ``folded_noise``).
    Exactly HalfNormal(scale), without the log transform of a positive site: a value near 0
    crosses it freely instead of sitting at the end of a long tail. ``x``'s sign means nothing
    (the diagnostics skip ``*_unfolded`` sites)."""
    return numpyro.deterministic(name, jnp.abs(numpyro.sample(raw_name, dist.Normal(0.0, scale))))


def standard_prior(df: float | None) -> dist.Distribution:
    """A standardised family offset (efficiency: ``ModelConfig.efficiency_df``, slope
    deviation: ``deviation_df``): N(0, 1), or Student-t with ``df`` degrees of freedom (heavy
    tails: a few outlying families, e.g. code models on commonsense benchmarks, do not widen
    the population's spread for every other)."""
    return dist.Normal(0.0, 1.0) if df is None else dist.StudentT(df, 0.0, 1.0)


def _centre(z):
    return z - jnp.mean(z, axis=0, keepdims=True)


def orthogonal_to(u, loadings):
    """``u`` (..., G, J) minus its projection on the loadings' columns (..., J, K): the part
    of a family's benchmark profile that no skill can explain. Without it a profile along
    the loadings is a second copy of the family's skills (a ridge NUTS crawls along).
    The columns are made orthonormal by Gram-Schmidt (K is small; elementwise operations,
    no LAPACK call per gradient); the anchor pattern keeps them independent."""
    basis = []
    for k in range(loadings.shape[-1]):
        v = loadings[..., :, k]
        for q in basis:
            v = v - (q * v).sum(-1, keepdims=True) * q
        basis.append(v / jnp.sqrt((v * v).sum(-1, keepdims=True)))
    for q in basis:
        q = q[..., None, :]
        u = u - (u * q).sum(-1, keepdims=True) * q
    return u


def identify_profile(u, loadings, anchor_rows=None):
    """A family profile ``u`` (..., G, J) stripped of what the family's skills already say.

    Two ways: ``anchor_rows=None`` projects ``u`` orthogonal to the loadings; with
    ``anchor_rows`` ((J,) 1 at the anchor benchmarks) the anchors get no profile: the skills
    are the anchors' family offsets, and the other benchmarks' profiles are read relative
    to them. Either removes the ridge between the profile and the family's skills; the
    projection mixes every benchmark's scale into every other, which leaves the anchors'
    scales weakly identified (slow chains)."""
    if anchor_rows is None:
        return orthogonal_to(u, loadings)
    return u * (1.0 - jnp.asarray(anchor_rows))


def profile_anchor_rows(mask: np.ndarray, config: ModelConfig) -> np.ndarray | None:
    """(J,) 1 at the anchor benchmarks (rows of the loading ``mask`` with a loading fixed at
    1) when family profiles are identified by them, else None (the projection)."""
    if not config.profile_anchors:
        return None
    return (np.asarray(mask) == 2.0).any(axis=1).astype(float)


def profiled_benchmarks(mask: np.ndarray, config: ModelConfig) -> np.ndarray:
    """(P,) indices of the benchmarks a family profile has entries for: all but the anchors
    when they carry none (``profile_anchors``), else all. An anchor's entry would be
    multiplied by 0 in the fit and in every forecast: not sampled, it cannot slow the
    chains or pass for an estimate."""
    rows = profile_anchor_rows(mask, config)
    return np.arange(np.shape(mask)[0]) if rows is None else np.flatnonzero(rows == 0.0)


def _profile(name: str, n_groups: int, group_of_llm, data: ModelData, config: ModelConfig, loadings):
    """Per-cell logit offset of a family's benchmark profile ``sigma_j * z[group, j]`` over
    the :func:`profiled_benchmarks` (z centred over groups: the difficulties keep the
    location; :func:`identify_profile`: the skills keep what they explain)."""
    n_bench = data.floor.shape[0]
    cols = profiled_benchmarks(data.loading_mask, config)
    if not len(cols):  # every benchmark an anchor: no profile to sample
        return 0.0
    with numpyro.plate("profiled_benchmark", len(cols)):
        sigma = numpyro.sample(f"sigma_{name}", scale_prior(config.family_bench_scale, config))
    with numpyro.plate(f"{name}_group", n_groups, dim=-2), numpyro.plate("profiled_benchmark", len(cols), dim=-1):
        z = numpyro.sample(f"z_{name}", dist.Normal(0.0, 1.0))
    u = jnp.zeros((n_groups, n_bench), z.dtype).at[:, cols].set(sigma * _centre(z))
    u = identify_profile(u, loadings, profile_anchor_rows(data.loading_mask, config))
    return u[group_of_llm[data.obs_row], data.obs_col]


def slope_deviation(tau, z):
    """Slope deviations (..., C, D, K) of coarse families, ``tau * z``: ``tau`` is (..., D),
    shared by the skills, or (..., D, K) (``deviation_per_skill``); D = 3 covariates, or 2
    without ``interaction_deviation``. Works on JAX arrays (the model) and on NumPy
    posterior draws with a leading sample axis (forecasts, plots)."""
    per_skill = tau.ndim == z.ndim - 1
    return (tau[..., None, :, :] if per_skill else tau[..., None, :, None]) * z


def deviation_knee(config: ModelConfig):
    """The knee of :func:`deviation_distance` for ``config``, or None for linear growth."""
    return config.deviation_knee if config.deviation_growth == "sqrt" else None


def deviation_distance(dx, knee=None, low=0.0, high=0.0):
    """The distance a slope deviation multiplies: ``dx`` itself (``knee=None``), or ``dx``
    inside the family's range ``[low, high]`` (both relative to the pivot, ``low <= 0 <=
    high``) and beyond it the range's edge plus ``e (1 + (e / knee)^2)^(-1/4)`` of the excess
    ``e``: ~``e`` just outside, ~``sqrt(knee |e|)`` far out. Continuous with a continuous
    slope (latent token counts move ``dx``), so a deviation still tilts the family's law
    around its own models, and the same on NumPy and JAX arrays."""
    if knee is None:
        return dx
    inside = dx.clip(low, high)
    excess = dx - inside
    return inside + excess * (1.0 + (excess / knee) ** 2) ** -0.25


def deviation_term(dx, dev, knee=None, low=0.0, high=0.0):
    """Skill offsets (..., K) of slope deviations ``dev`` (..., D, K) at covariate distances
    ``dx`` (..., 3) from the family's pivot (only the first D covariates deviate), grown
    with the distance as :func:`deviation_distance` says (``low``, ``high``: (..., 3) edges
    of the family's covariate range relative to its pivot)."""
    n_dev = dev.shape[-2]
    low, high = (v if np.ndim(v) == 0 else v[..., :n_dev] for v in (low, high))
    return (deviation_distance(dx[..., :n_dev], knee, low, high)[..., None] * dev).sum(-2)


def _family_weights(data: ModelData, group=None, n_groups=None) -> np.ndarray:
    """(N, G) True where an LLM with a cell in the likelihood belongs to a group: its coarse
    family (default), or ``group`` (N,) of ``n_groups`` (e.g. its sub-family)."""
    n_llm = np.shape(data.size_z)[0]
    group = np.asarray(data.coarse) if group is None else group
    n_groups = data.n_coarse if n_groups is None else n_groups
    rows = np.asarray(data.obs_row)
    in_lik = np.ones(rows.shape[0], bool) if data.cell_mask is None else np.asarray(data.cell_mask, bool)
    seen = np.zeros(n_llm, bool)
    seen[rows[in_lik]] = True  # the LLM is in the likelihood
    return (group[:, None] == np.arange(n_groups)[None, :]) & seen[:, None]


def _pivots(data: ModelData, group=None, n_groups=None) -> np.ndarray:
    """(C, 3) mean ``x_fill`` of each coarse family's LLMs with a cell in the likelihood (0 for
    a family without any, e.g. held out by a backtest mask): :func:`family_centres` of the
    model's arrays; of other groups with ``group`` / ``n_groups`` (:func:`_family_weights`).
    NumPy: the mask is data, so this is computed once, not per gradient."""
    w = _family_weights(data, group, n_groups).astype(float)
    count = w.sum(0)[:, None]
    return np.where(count > 0, (w.T @ np.asarray(data.x_fill, float)) / np.maximum(count, 1.0), 0.0)


def _ranges(data: ModelData) -> tuple[np.ndarray, np.ndarray]:
    """(C, 3) lowest and highest ``x_fill`` of each coarse family's LLMs with a cell in the
    likelihood (both 0 for a family without any): :func:`family_ranges` of the model's arrays."""
    w = _family_weights(data)[:, :, None]  # (N, C, 1)
    x = np.asarray(data.x_fill, float)[:, None, :]  # (N, 1, 3)
    low = np.where(w, x, np.inf).min(0)
    high = np.where(w, x, -np.inf).max(0)
    seen = w.any(0)
    return np.where(seen, low, 0.0), np.where(seen, high, 0.0)


def deviation_pivots(data: ModelData):
    """``(pivot, low, high)``, each (C, 3): the coarse families' pivots and covariate ranges
    that :func:`skills_model`'s slope deviations use: ``data.frame`` when given (a fitter
    whose cell mask is a traced argument computes it on the host), else from the data."""
    if data.frame is not None:
        return data.frame
    return (_pivots(data), *_ranges(data))


def skills_model(data: ModelData, config: ModelConfig, y=None):
    """NumPyro model of the skills scaling law. ``y`` = observed cells (None to simulate)."""
    k = config.n_skills
    n_llm, n_sub, n_bench = data.size_z.shape[0], data.sub_coarse.shape[0], data.floor.shape[0]
    skill = numpyro.plate("skill", k, dim=-1)

    with numpyro.plate("covariate", 3, dim=-2), skill:
        slopes = numpyro.sample("slopes", dist.Normal(0.0, config.slope_scale))
    with skill:
        instruct_shift = numpyro.sample("instruct_shift", dist.Normal(0.0, config.instruct_scale))
        sigma_sub = numpyro.sample("sigma_sub", scale_prior(config.sub_scale, config))
        sigma_coarse = numpyro.sample("sigma_coarse", scale_prior(config.coarse_scale, config))
    # Anchor a loads 1 on skill a (fixes the skill's scale and sign), 0 on later skills (on
    # every other with pure anchors).
    mask = data.loading_mask
    n_free = int(np.sum(mask == 1.0))
    free = jnp.zeros((0,))  # every benchmark a pure anchor: no free loading
    if n_free:
        with numpyro.plate("loading_free", n_free):
            if folds_loadings(config):
                # two loadings that share a total (two correlated skills) then lie on a straight
                # ridge, not a curved one
                free = folded_half_normal("loadings_unfolded", "loadings_free", config.loading_scale)
            elif config.signed_loadings:
                free = numpyro.sample("loadings_free", dist.Normal(0.0, config.loading_scale))
            else:
                free = numpyro.sample("loadings_free", dist.HalfNormal(config.loading_scale))
    loadings = numpyro.deterministic("loadings", loadings_matrix(free, mask))
    centring = {name: 0.0 for name in CENTRED_SITES} | (data.centring or {})
    # correlated efficiencies: z_coarse = z L^T with z i.i.d. (LKJ prior on the factor L)
    chol = None
    if config.correlated_efficiency:
        chol = numpyro.sample("efficiency_chol", dist.LKJCholesky(k, concentration=2.0))
    if data.centring:
        z_coarse = pinned_offsets("z_coarse", "coarse_family", config.efficiency_df, sigma_coarse,
                                  centring["z_coarse"], coarse_pivot_skills(data, slopes), anchor_block(loadings, mask),
                                  chol)
    else:
        with numpyro.plate("coarse_family", data.n_coarse, dim=-2), skill:
            z_coarse = numpyro.sample("z_coarse", standard_prior(config.efficiency_df))
        z_coarse = correlate(z_coarse, chol)
    # Centring the standardised offsets fixes the skills' location exactly (the benchmark
    # difficulties take it), instead of leaving a ridge that NUTS crosses slowly; the mean
    # direction of each z is then likelihood-free and mixes at no cost.
    z_coarse = _centre(z_coarse)
    alpha_coarse = numpyro.deterministic("alpha_coarse", sigma_coarse * z_coarse)
    sub_chol = None
    if config.correlated_sub:
        sub_chol = numpyro.sample("sub_chol", dist.LKJCholesky(k, concentration=2.0))
    if data.centring:
        z_sub = pinned_offsets("z_sub", "family", config.efficiency_df, sigma_sub, centring["z_sub"],
                               sub_pivot_skills(data, slopes), anchor_block(loadings, mask), sub_chol)
    else:
        with numpyro.plate("family", n_sub, dim=-2), skill:
            z_sub = numpyro.sample("z_sub", standard_prior(config.efficiency_df))
        z_sub = correlate(z_sub, sub_chol)
    alpha = numpyro.deterministic(
        "alpha", alpha_coarse[data.sub_coarse] + sigma_sub * _centre(z_sub)
    )

    # Token counts: observed, or latent with a prior centred on the coarse family's counts
    # (or a same-size sibling's), one latent per (family, size) group.
    tokens_z = jnp.asarray(data.tokens_z)
    if data.tokens_missing.shape[0]:
        with numpyro.plate("tokens_group", data.tokens_prior_loc.shape[0]):
            t_grp = numpyro.sample(
                "tokens_shared", dist.Normal(data.tokens_prior_loc, data.tokens_prior_scale)
            )
        t_lat = numpyro.deterministic("tokens_latent", t_grp[data.tokens_group])
        tokens_z = tokens_z.at[data.tokens_missing].set(t_lat)
    x = covariates(data.size_z, tokens_z)  # (N, 3)

    theta = alpha[data.sub] + data.instruct[:, None] * instruct_shift + x @ slopes
    if config.size_curvature:
        with skill:
            curv = numpyro.sample("size_curvature", dist.Normal(0.0, config.curvature_scale))
        theta = theta + jnp.asarray(data.size_bend)[:, None] * curv
    if config.slope_deviations:
        n_dev = 3 if config.interaction_deviation else 2
        tau_shape = [n_dev, k] if config.deviation_per_skill else [n_dev]
        tau = numpyro.sample(
            "tau_slope",
            scale_prior(config.deviation_scale, config).expand(tau_shape).to_event(len(tau_shape)),
        )
        dz = numpyro.sample(
            "z_slope", standard_prior(config.deviation_df).expand([data.n_coarse, n_dev, k]).to_event(3)
        )
        dev = slope_deviation(tau, dz)  # (C, D, K)
        # pivot on the family's mean covariates: a deviation tilts the family's law around
        # its own models (else, in a family trained on one token count, the tokens deviation
        # is a second intercept: a ridge with alpha_coarse that shrinks NUTS's step size)
        pivots, low_c, high_c = deviation_pivots(data)
        pivot = jnp.asarray(pivots, jnp.float32)[data.coarse]
        low, high = (jnp.asarray(edge, jnp.float32)[data.coarse] - pivot for edge in (low_c, high_c))
        theta = theta + deviation_term(x - pivot, dev[data.coarse], deviation_knee(config), low, high)
    if config.llm_residual:
        with skill:
            sigma_llm = numpyro.sample("sigma_llm", scale_prior(config.llm_scale, config))
        with numpyro.plate("llm", n_llm, dim=-2), skill:
            z_llm = numpyro.sample("z_llm", dist.Normal(0.0, 1.0))
        theta = theta + sigma_llm * _centre(z_llm)

    with numpyro.plate("benchmark", n_bench):
        difficulty = numpyro.sample("difficulty", dist.Normal(0.0, config.difficulty_scale))
        if config.folded_noise:
            sigma_bench = folded_half_normal("sigma_bench_unfolded", "sigma_bench", config.bench_noise_scale)
        else:
            sigma_bench = numpyro.sample("sigma_bench", scale_prior(config.bench_noise_scale, config))
        sigma_logit = jnp.zeros(n_bench)
        if config.logit_noise:
            sigma_logit = numpyro.sample("sigma_logit", scale_prior(config.logit_noise_scale, config))
        log_ratio = None
        if config.logit_noise and config.instruct_noise:
            log_ratio = numpyro.sample("instruct_noise", dist.Normal(0.0, config.instruct_noise_scale))
    floor_all = jnp.asarray(data.floor)
    if learns_floor(config, data):
        prior = dist.Normal(0.0, config.floor_lift_scale).expand([len(data.lifted)])
        raw = numpyro.sample("floor_lift_unfolded", prior)
        lift = numpyro.deterministic("floor_lift", jnp.zeros(n_bench).at[data.lifted].set(jnp.abs(raw)))
        floor_all = lifted_floor(floor_all, lift)

    theta_obs = theta[data.obs_row]  # (O, K)
    lam = loadings[data.obs_col]
    logit = jnp.sum(theta_obs * lam, -1) + difficulty[data.obs_col]
    if config.instruct_bench:
        with numpyro.plate("benchmark", n_bench):
            shift_b = numpyro.sample("instruct_bench", dist.Normal(0.0, config.instruct_bench_scale))
        # along the loadings it would copy ``instruct_shift``: keep the orthogonal part only
        shift_b = orthogonal_to(shift_b[None, :], loadings)[0]
        logit = logit + data.instruct[data.obs_row] * shift_b[data.obs_col]
    # A family's own benchmark profile (logit offsets no skill explains), carried from its
    # observed models to its forecasts: per coarse family, per sub-family, or nested.
    if config.family_bench in ("coarse", "nested"):
        logit = logit + _profile("family_bench", data.n_coarse, data.coarse, data, config, loadings)
    if config.family_bench in ("sub", "nested"):
        logit = logit + _profile("sub_bench", n_sub, data.sub, data, config, loadings)
    power = 1.0
    if config.link_power:
        log_power = numpyro.sample("log_link_power", dist.Normal(0.0, config.link_power_scale))
        power = numpyro.deterministic("link_power", jnp.exp(log_power))
    floor = floor_all[data.obs_col]
    mu = floor + (1.0 - floor) * link(logit, power)
    sl = logit_noise_sd(
        sigma_logit[data.obs_col],
        data.instruct[data.obs_row],
        None if log_ratio is None else log_ratio[data.obs_col],
    )
    sd = observation_sd(mu, data.inv_items[data.obs_col], sigma_bench[data.obs_col], floor, sl, power, logit)
    with numpyro.plate("cell", data.obs_row.shape[0]), numpyro.handlers.mask(
        mask=True if data.cell_mask is None else data.cell_mask
    ):
        half_step = 0.0
        if config.rounded_scores and data.step is not None:
            half_step = 0.5 * jnp.asarray(data.step)[data.obs_col]
        boundary = None if y is None else data.boundary
        numpyro.sample("y", CensoredNormal(mu, sd, boundary=boundary, half_step=half_step), obs=y)
