"""Which part of a lofo-1 forecast's error does its predictive over- or under-state?

    SLOTH_BAYES_DATA=leaderboard_v2.csv python benchmarks/error_components.py pythia opt gemma \
        [--set all --seed 0 --chains 2 --warmup 200 --draws 200]

For each held-out group (a name of ``backtest.GROUPS`` or a sub-family in one) it fits the
group's lofo-1 training table once, draws the held-out models' scores jointly, and splits the
errors ``e = truth - predictive mean`` of the group's cells (models x benchmarks) four ways:

- ``total``: the root mean square of ``e``;
- ``bench``: of the per-benchmark mean error over the group's models (what the family's
  forecast gets wrong on a benchmark at every size: its efficiency, profile, slopes);
- ``within``: of ``e`` about that mean (model to model: noise and how the error changes with
  size);
- ``model``: of the per-model mean error over benchmarks (a model's skills as a whole).

Each is printed for the truths and for the predictive's own draws (``truth / predicted``, in
score points, and the share of draws below the truth's value: near 0 the predictive expects
larger errors than the truths show, near 1 smaller). A last line pools the groups by cells
(ratio of truth to predicted root mean squares) and gives the share of the predicted mean
square that the observation noise alone makes (``y - mu`` of the draws).
"""

from __future__ import annotations

import sys
import warnings

import numpy as np
from _lofo import fitted_folds

NAMES = ("total", "bench", "within", "model")


def components(e: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """Mean squares (4,) of the errors ``e`` (..., models, benchmarks) over the observed cells
    ``ok``: total, per-benchmark mean, about the per-benchmark mean, per-model mean."""
    e = np.where(ok, e, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a benchmark no held-out model has
        bench = np.where(ok, np.nanmean(e, axis=-2, keepdims=True), np.nan)  # per observed cell
        model = np.where(ok, np.nanmean(e, axis=-1, keepdims=True), np.nan)
        parts = (e**2, bench**2, (e - bench) ** 2, model**2)
        return np.stack([np.nanmean(x, axis=(-2, -1)) for x in parts], axis=-1)


def main(argv=None) -> int:
    from sloth_bayes.forecast import predictive_draws

    pooled = np.zeros((3, len(NAMES)))  # truth, predicted, noise-only; weighted by cells
    print(f"{'group':28s} {'cells':>5s} " + " ".join(f"{n + ' (truth/pred, q)':>24s}" for n in NAMES))
    for fold, model, benches, args in fitted_folds(__doc__, argv):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            d = predictive_draws(model.idata_, fold.test, seed=args.seed)
        names = [str(m) for m in d["model"].values]
        truth = fold.test.set_index(fold.test["Model"].astype(str)).loc[names, benches].to_numpy(float)
        ok = np.isfinite(truth)
        y, mu = (d[v].sel(benchmark=benches).transpose("sample", "model", "benchmark").to_numpy() for v in ("y", "mu"))
        centre = y.mean(axis=0)
        observed = components(truth - centre, ok)
        drawn = components(y - centre, ok)  # (S, 4)
        noise = components(y - mu, ok).mean(axis=0)
        share_below = (drawn < observed).mean(axis=0)
        pooled += ok.sum() * np.stack([observed, drawn.mean(axis=0), noise])
        cells = " ".join(
            f"{100 * np.sqrt(a):11.2f} /{100 * np.sqrt(b):5.2f} {q:4.2f}"
            for a, b, q in zip(observed, drawn.mean(axis=0), share_below)
        )
        print(f"{fold.group[:28]:28s} {ok.sum():5d} {cells}", flush=True)
    with np.errstate(invalid="ignore", divide="ignore"):  # "within" of one-model groups: 0 / 0
        ratio, share = np.sqrt(pooled[0] / pooled[1]), pooled[2] / pooled[1]
    print("pooled truth / predicted rms: " + ", ".join(f"{n} {r:.2f}" for n, r in zip(NAMES, ratio)))
    print("noise share of the predicted ms: " + ", ".join(f"{n} {s:.2f}" for n, s in zip(NAMES, share)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
