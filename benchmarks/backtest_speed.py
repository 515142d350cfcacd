"""Time a backtest of one benchmark set: compilation against per-fold seconds.

    python benchmarks/backtest_speed.py [DATA.csv] [--set v2 --protocol lofo-1
        --warmup 150 --draws 150 --chains 2 --jobs 1 --groups olmo,opt --skills 2
        --per-fold --simulated]

One row per fit (a fold; folds of several sets with the same training table share one):
training size, ``compile_seconds`` (with the compiled fold path, the default: the one-time
encoding and the build of the SVI and NUTS kernels, paid by the first fold of each process
and 0 after), ``fold_seconds`` (the rest of the fold: SVI and NUTS runs, forecast, scoring),
SVI, NUTS and baseline seconds, divergences and the largest R-hat. Then, in the same run,
the ratios: compilation over the mean fold, and the wall time against the estimate of a
backtest that recompiles every fold (``folds x (compile + mean fold)``).

``--per-fold`` runs the old path (a fresh ``SlothBayes.fit`` per fold, compiling each time:
there compilation is inside the NUTS seconds, so compile_seconds is empty);
DATA defaults to ``$SLOTH_BAYES_DATA`` or the embedded table; ``--simulated`` uses a small
table simulated from the model's prior (a smoke run).
"""

from __future__ import annotations

import argparse
import os
import sys
import time


def _simulated_table():
    """A simulated table whose largest family is renamed to a real group ("olmo")."""
    from sloth_bayes.data import FAMILY, INSTRUCT, SUBFAMILY
    from sloth_bayes.model import ModelConfig
    from sloth_bayes.simulate import simulate_table

    table, _ = simulate_table(config=ModelConfig(n_skills=2), seed=3)
    base = table[~table[INSTRUCT].astype(bool)]
    fam = base[SUBFAMILY].value_counts().index[0]
    table[SUBFAMILY] = table[SUBFAMILY].replace({fam: "olmo"})
    table.loc[table[SUBFAMILY] == "olmo", FAMILY] = "olmo"
    return table


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("data", nargs="?", default=None, help="CSV table (default: the embedded one)")
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
    p.add_argument("--per-fold", action="store_true", help="a fresh fit (and compilation) per fold")
    p.add_argument("--simulated", action="store_true", help="a small simulated table instead of DATA")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    import numpyro

    if args.jobs <= 1:  # workers of jobs > 1 get their devices from the backtest itself
        numpyro.set_host_device_count(max(1, min(args.chains, os.cpu_count() or 1)))
    from functools import partial

    import pandas as pd

    from sloth_bayes import SlothBayes
    from sloth_bayes.backtest import run_backtest
    from sloth_bayes.datasets import find_leaderboard

    factory = partial(
        SlothBayes, args.skills, chains=args.chains, warmup=args.warmup, draws=args.draws,
        svi_steps=args.svi_steps, svi_restarts=args.svi_restarts,
    )
    table = _simulated_table() if args.simulated else pd.read_csv(find_leaderboard(args.data))
    groups = [g.strip() for g in args.groups.split(",")] if args.groups else None
    t0 = time.perf_counter()
    res = run_backtest(
        table, sets=(args.set,), protocol=args.protocol, model_factory=factory,
        seed=args.seed, jobs=args.jobs, baselines=not args.no_baselines, groups=groups,
        compiled=not args.per_fold, verbose=False,
    )
    wall = time.perf_counter() - t0
    fits = res.fits.copy()
    compile_s = fits["compile_seconds"].fillna(0.0)
    fits["fold_seconds"] = fits["seconds"] - compile_s
    cols = ["groups", "n_train", "n_train_cells", "compile_seconds", "fold_seconds", "svi_seconds",
            "nuts_seconds", "baseline_seconds", "chain_method", "divergences", "rhat_max"]
    with pd.option_context("display.width", 200, "display.max_colwidth", 40):
        print(fits[cols].round(2).to_string(index=False))
    n = len(fits)
    per_fold = float(fits["fold_seconds"].mean())
    total_compile = float(compile_s.sum())
    builds = int((compile_s > 0).sum())
    path = "per-fold fits" if args.per_fold else "compiled folds"
    print(
        f"\nset {args.set}, {args.protocol} ({path}): {n} fits, {len(res.cells)} cells; "
        f"K={res.settings.get('model', {}).get('n_skills')}, {args.chains} chains x "
        f"({args.warmup} warm-up + {args.draws} draws), jobs={args.jobs}, {os.cpu_count()} CPUs"
    )
    print(f"wall {wall:.1f} s; fits summed {fits['seconds'].sum():.1f} s")
    if args.per_fold:
        print(f"mean fit {per_fold:.1f} s (compilation included: every fold compiles)")
        return 0
    mean_compile = total_compile / max(builds, 1)
    recompiling = n * (mean_compile + per_fold)
    print(
        f"compilation {total_compile:.1f} s in {builds} build(s) ({mean_compile:.1f} s each); "
        f"mean fold {per_fold:.1f} s without it; compile / fold = {mean_compile / per_fold:.1f}"
    )
    print(
        f"a fold costs {per_fold / (mean_compile + per_fold):.0%} of a fold that recompiles; "
        f"estimate recompiling every fold: {recompiling:.1f} s summed, "
        f"{recompiling / max(fits['seconds'].sum(), 1e-9):.1f}x the compiled run's fits"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
