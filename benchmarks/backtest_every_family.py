"""Backtest every family in the table, not only EVALUATION.md's groups. Prints one line per
subset of families and writes the backtest's files.

    SLOTH_BAYES_DATA=leaderboard_v2.csv python benchmarks/backtest_every_family.py OUT_DIR \
        [--protocol zero-shot|lofo-1|lofo-2 --level coarse|sub --set all --seed 0
         --chains 2 --warmup 200 --draws 200 --jobs 2]

EVALUATION.md's groups were chosen for their many sizes: old, well-known suites (pythia, opt,
bloom, ...), typical families that land near the centre of the population. Their coverage
says how the intervals fit *those* families; whether the intervals are as wide as the
population of families is spread needs every family held out in turn, and the withheld
protocols this package will be judged on hold out others. ``--level coarse``: each coarse
family (all of its sub-families) is one group; at ``zero-shot`` it is fitted without any of
its models and forecast as a new family. ``--level sub``: each sub-family of a coarse family
with several is one group; at ``zero-shot`` it is forecast as a new sub-family of a known
family (a community fine-tune of a known base family, say). The lines split the scored cells
into the families of EVALUATION.md's groups (any set) and the others. Columns: cells, groups,
MAE of the median and CRPS (score points), 50% and 90% coverage, and the 90% range of the
pooled 90% coverage over resampled groups (``metrics.group_bootstrap``).
"""

from __future__ import annotations

import argparse
import os
import sys
from functools import partial

import numpy as np
import pandas as pd


def main(argv=None) -> int:
    from sloth_bayes import SlothBayes
    from sloth_bayes.backtest import GROUPS, run_backtest, write_backtest
    from sloth_bayes.data import FAMILY, SUBFAMILY

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out")
    p.add_argument("--data", default=os.environ.get("SLOTH_BAYES_DATA"))
    p.add_argument("--protocol", default="zero-shot", choices=["zero-shot", "lofo-1", "lofo-2"])
    p.add_argument("--level", default="coarse", choices=["coarse", "sub"])
    p.add_argument("--set", default="all")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--chains", type=int, default=2)
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--draws", type=int, default=200)
    p.add_argument("--jobs", type=int, default=2)
    args = p.parse_args(argv)
    if not args.data:
        p.error("give --data or set SLOTH_BAYES_DATA to the leaderboard table")
    table = pd.read_csv(args.data)
    subs = table.groupby(table[FAMILY].astype(str))[SUBFAMILY].agg(lambda s: tuple(sorted(set(s.astype(str)))))
    if args.level == "coarse":
        groups = {f"family {c}": s for c, s in subs.items()}
    else:
        groups = {f"sub-family {s}": (s,) for many in subs if len(many) > 1 for s in many}
    factory = partial(SlothBayes, chains=args.chains, warmup=args.warmup, draws=args.draws)
    result = run_backtest(table, sets=[args.set], protocol=args.protocol, model_factory=factory,
                          seed=args.seed, jobs=args.jobs, baselines=False, groups=groups)
    write_backtest(result, args.out)
    cells = result.cells
    protocol_subs = {s for g in GROUPS.values() for subs_ in g.values() for s in subs_}
    cells["in_protocol"] = cells["family2"].astype(str).isin(protocol_subs)
    print(f"{'families':<28} {'cells':>5} {'groups':>6} {'MAE':>5} {'CRPS':>5} {'cov50':>5} {'cov90':>5}  cov90 range")
    for label, part in (("all", cells), ("EVALUATION.md's (any set)", cells[cells.in_protocol]),
                        ("the others", cells[~cells.in_protocol])):
        print(_line(label, part))
    return 0


def _line(label: str, cells: pd.DataFrame) -> str:
    from sloth_bayes.metrics import group_bootstrap

    t = cells["truth"]
    in50 = ((t >= cells["lower_50"]) & (t <= cells["upper_50"])).mean()
    in90 = ((t >= cells["lower_90"]) & (t <= cells["upper_90"])).mean()
    b = group_bootstrap(cells).set_index("metric").loc["coverage_90"]
    lo, hi = float(np.atleast_1d(b["lower"])[0]), float(np.atleast_1d(b["upper"])[0])
    return (f"{label:<28} {len(cells):>5} {cells['group'].nunique():>6} "
            f"{100 * cells['abs_error'].mean():>5.2f} {100 * cells['crps'].mean():>5.2f} "
            f"{in50:>5.3f} {in90:>5.3f}  {lo:.3f}-{hi:.3f}")


if __name__ == "__main__":
    sys.exit(main())
