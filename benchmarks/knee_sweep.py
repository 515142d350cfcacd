"""Score several slope-deviation knees on the same lofo-1 fits. Prints one line per knee and set.

    SLOTH_BAYES_DATA=leaderboard_v2.csv python benchmarks/knee_sweep.py \
        [--knees 1,0.5,0.25,0.125 --sets v1,v2,all --protocol lofo-1 --seed 0 --chains 2 --warmup 200 --draws 200]

``ModelConfig.deviation_knee`` only shapes forecasts beyond a family's fitted models (every
fitted model is inside its family's range: the posterior is the same under any knee), so
each fold is fitted once, with the default model, and forecast again per knee by changing
the knee stored with the fit. Columns: MAE of the median and CRPS (score points), pooled
50% and 90% coverage, the lowest benchmark's 90% coverage. Stop 34 ran it (seed 0,
``reports/stop34/knee_sweep_lofo1_s0.md``) through the backtest's compiled folds; this script
fits each training table afresh (about 70 s a fit on 2 cores, one fit per distinct training
table), so its figures differ from those by a sampler's noise.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings

import numpy as np
import pandas as pd


def main(argv=None) -> int:
    from sloth_bayes import SlothBayes
    from sloth_bayes.backtest import SETS, folds
    from sloth_bayes.metrics import crps

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=os.environ.get("SLOTH_BAYES_DATA"))
    p.add_argument("--knees", default="1,0.5,0.25,0.125")
    p.add_argument("--sets", default="v1,v2,all")
    p.add_argument("--protocol", default="lofo-1")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--chains", type=int, default=2)
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--draws", type=int, default=200)
    p.add_argument("--groups", default=None, help="a comma list of groups (default: all of the set's)")
    args = p.parse_args(argv)
    if not args.data:
        p.error("give --data or set SLOTH_BAYES_DATA to the leaderboard table")
    table = pd.read_csv(args.data)
    knees = [float(k) for k in args.knees.split(",")]
    rows, fits = [], {}  # one fit per training table: the sets share most folds
    groups = args.groups.split(",") if args.groups else None
    for set_name in args.sets.split(","):
        benches = [b for b in SETS[set_name] if b in table.columns]
        for fold in folds(table, set_name, args.protocol, groups=groups):
            key = tuple(sorted(fold.train["Model"].astype(str)))
            if key not in fits:
                fits[key] = SlothBayes(chains=args.chains, warmup=args.warmup, draws=args.draws)
                fits[key].fit(fold.train, seed=args.seed, progress_bar=False)
            model = fits[key]
            stored = json.loads(model.idata_.attrs["sloth_bayes_config"])
            truth = fold.test.set_index(fold.test["Model"].astype(str))
            for knee in knees:
                model.idata_.attrs["sloth_bayes_config"] = json.dumps({**stored, "deviation_knee": knee})
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)  # zero-shot: new families
                    d = model.predictive_draws(fold.test, seed=args.seed)
                y = d["y"].sel(benchmark=benches).to_numpy()  # (S, Q, J)
                t = truth.loc[list(d["model"].values), benches].to_numpy(float)
                lo50, hi50, lo90, hi90, med = np.quantile(y, [0.25, 0.75, 0.05, 0.95, 0.5], axis=0)
                ok = np.isfinite(t)  # (Q, J): the scored cells
                rows.append(pd.DataFrame({
                    "set": set_name, "knee": knee, "benchmark": np.broadcast_to(benches, t.shape)[ok],
                    "err": (med - t)[ok], "crps": crps(y, t)[ok],
                    "in50": ((lo50 <= t) & (t <= hi50))[ok], "in90": ((lo90 <= t) & (t <= hi90))[ok],
                }))
            print(f"[knee_sweep] {set_name} {fold.group}", file=sys.stderr, flush=True)
    cells = pd.concat(rows, ignore_index=True)
    out = cells.groupby(["set", "knee"], sort=False).agg(
        n=("err", "size"), mae_points=("err", lambda e: 100 * e.abs().mean()),
        crps_points=("crps", lambda c: 100 * c.mean()), coverage_50=("in50", "mean"), coverage_90=("in90", "mean"))
    out["lowest_benchmark_90"] = cells.groupby(["set", "knee", "benchmark"], sort=False)["in90"].mean().groupby(
        level=[0, 1], sort=False).min()
    print(out.round(3).to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())
