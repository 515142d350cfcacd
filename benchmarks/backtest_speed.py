"""Time a backtest of one benchmark set and print the wall time per fold and in total.

    python benchmarks/backtest_speed.py [DATA.csv] [--set v2 --protocol lofo-1
        --warmup 150 --draws 150 --chains 2 --jobs 1 --groups olmo,opt --skills 2]

One row per fit (a fold; folds of several sets with the same training table share one):
training size, total seconds, of which SVI initialisation, NUTS (compilation + warm-up +
sampling) and the point baselines, plus divergences and the largest R-hat. Then the total
wall time and the fold time summed (their ratio is the speed-up of ``--jobs``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("data", nargs="?", default=os.environ.get("SLOTH_BAYES_DATA"))
    p.add_argument("--set", default="v2", help="benchmark set: v1, v2 or all")
    p.add_argument("--protocol", default="lofo-1")
    p.add_argument("--groups", default=None, help="comma list of groups (default: all of the set)")
    p.add_argument("--skills", type=int, default=None)
    p.add_argument("--chains", type=int, default=2)
    p.add_argument("--warmup", type=int, default=150)
    p.add_argument("--draws", type=int, default=150)
    p.add_argument("--svi-steps", type=int, default=500)
    p.add_argument("--svi-restarts", type=int, default=2)
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("--no-baselines", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if not args.data:
        print("give the table's path or set SLOTH_BAYES_DATA", file=sys.stderr)
        return 2

    import numpyro

    if args.jobs <= 1:  # workers of jobs > 1 get their devices from the backtest itself
        numpyro.set_host_device_count(max(1, min(args.chains, os.cpu_count() or 1)))
    from functools import partial

    import pandas as pd

    from sloth_bayes import SlothBayes
    from sloth_bayes.backtest import run_backtest

    factory = partial(
        SlothBayes, args.skills, chains=args.chains, warmup=args.warmup, draws=args.draws,
        svi_steps=args.svi_steps, svi_restarts=args.svi_restarts,
    )
    groups = [g.strip() for g in args.groups.split(",")] if args.groups else None
    t0 = time.perf_counter()
    res = run_backtest(
        pd.read_csv(args.data), sets=(args.set,), protocol=args.protocol, model_factory=factory,
        seed=args.seed, jobs=args.jobs, baselines=not args.no_baselines, groups=groups,
    )
    wall = time.perf_counter() - t0
    cols = ["groups", "n_train", "n_train_cells", "seconds", "svi_seconds", "nuts_seconds",
            "baseline_seconds", "chain_method", "divergences", "rhat_max"]
    with pd.option_context("display.width", 200, "display.max_colwidth", 40):
        print(res.fits[cols].round(2).to_string(index=False))
    total = res.fits["seconds"].sum()
    print(
        f"\nset {args.set}, {args.protocol}: {len(res.fits)} fits, {len(res.cells)} cells; "
        f"K={res.settings.get('model', {}).get('n_skills')}, {args.chains} chains x "
        f"({args.warmup} warm-up + {args.draws} draws), jobs={args.jobs}, {os.cpu_count()} CPUs"
    )
    print(f"wall {wall:.1f} s; fits summed {total:.1f} s; mean per fit {total / len(res.fits):.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
