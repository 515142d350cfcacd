"""Where does the width of a lofo-1 forecast come from? Prints one line per variant.

    SLOTH_BAYES_DATA=leaderboard_v2.csv python benchmarks/width_sources.py pythia yi-1.5 \
        [--set all --seed 0 --chains 2 --warmup 200 --draws 200]

For each held-out group (a name of ``backtest.GROUPS`` or a sub-family in one) it fits the
group's lofo-1 training table once, forecasts the group's held-out models, and scores the
set's cells: the 50% width and 50% coverage of the observed-score draws ``y`` and of the
skill-implied mean ``mu`` (``y`` without the observation noise), and the MAE of the median.
Then it forecasts again with one block of the posterior frozen at its mean (every draw set
to it): the drop in width is what that block's uncertainty adds. Blocks that are correlated
in the posterior can widen a forecast when frozen alone; read the ``mu`` against ``y``
column first (noise against everything else).
"""

from __future__ import annotations

import sys
import warnings

import numpy as np
from _lofo import fitted_folds

BLOCKS = {
    "efficiency": ("alpha", "alpha_coarse"),
    "deviation": ("z_slope", "tau_slope"),
    "profile": ("z_family_bench", "sigma_family_bench"),
    "slopes": ("slopes", "instruct_shift"),
    "loadings": ("loadings", "difficulty", "instruct_bench", "link_power", "floor_lift"),
}


def _scores(idata, fold, benches, seed) -> str:
    from sloth_bayes.forecast import predictive_draws
    from sloth_bayes.metrics import coverage

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        d = predictive_draws(idata, fold.test, seed=seed)
    truth = fold.test.set_index(fold.test["Model"].astype(str)).loc[list(d["model"].values), benches].to_numpy()
    ok = np.isfinite(truth)
    out = []
    for name in ("y", "mu"):
        a = d[name].sel(benchmark=benches).to_numpy()
        lo, hi = np.quantile(a, [0.25, 0.75], axis=0)
        out.append(f"{name}: w50 {100 * (hi - lo)[ok].mean():5.2f} cov50 {coverage(lo, hi, truth):.2f}")
    median = np.median(d["y"].sel(benchmark=benches).to_numpy(), axis=0)
    out.append(f"MAE {100 * np.abs(median - truth)[ok].mean():.2f}")
    return " | ".join(out)


def main(argv=None) -> int:
    for fold, model, benches, args in fitted_folds(__doc__, argv):
        print(f"{fold.group:24s} {'full':14s} {_scores(model.idata_, fold, benches, args.seed)}", flush=True)
        for label, names in BLOCKS.items():
            tree = model.idata_.copy(deep=True)
            post = tree["posterior"].to_dataset()
            for v in names:
                if v in post:
                    post[v] = post[v] * 0 + post[v].mean(("chain", "draw"))
            tree["posterior"] = post
            print(f"{fold.group:24s} {'no ' + label:14s} {_scores(tree, fold, benches, args.seed)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
