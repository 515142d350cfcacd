"""Write the shipped simulated leaderboard: the embedded table's design, scores drawn from
the posterior predictive of a fit to it.

    python scripts/make_simulated.py [--out-dir data] [--chains 2 --warmup 500 --draws 500
                                      --seed 0]

One fit of the default model to the embedded table (by default 2 chains x 500 draws after
500 warm-up: enough for one plausible posterior draw, not a converged fit to report), one
posterior draw picked by the seed, and the table's cells drawn from the model's likelihood at
that draw (``sloth_bayes.simulate.simulate_from_fit``). Writes
``simulated_leaderboard.csv`` and ``simulated_parameters.json`` (the draw's parameter values,
so that a fit of the simulated table can be checked against them), and prints plausibility
checks of both tables (``sloth_bayes.simulate.plausibility``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out-dir", default=str(ROOT / "data"))
    p.add_argument("--chains", type=int, default=2)
    p.add_argument("--warmup", type=int, default=500)
    p.add_argument("--draws", type=int, default=500)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    import numpyro

    numpyro.set_host_device_count(args.chains)
    import pandas as pd

    from sloth_bayes import SlothBayes
    from sloth_bayes.datasets import load_leaderboard
    from sloth_bayes.simulate import plausibility, simulate_from_fit, write_simulated

    table = load_leaderboard()
    t0 = time.perf_counter()
    model = SlothBayes(chains=args.chains, warmup=args.warmup, draws=args.draws).fit(
        table, seed=args.seed, progress_bar=False
    )
    seconds = time.perf_counter() - t0
    simulated, record = simulate_from_fit(model, table, seed=args.seed)
    record["command"] = (
        f"python scripts/make_simulated.py --chains {args.chains} --warmup {args.warmup} "
        f"--draws {args.draws} --seed {args.seed}"
    )
    csv_path, json_path = write_simulated(simulated, record, args.out_dir)

    with pd.option_context("display.width", 160):
        print(f"fit: {seconds:.0f} s, {args.chains} chains x ({args.warmup} + {args.draws}); "
              f"draw {record['draw']} of chain {record['chain']}")
        checks = plausibility(table).merge(
            plausibility(simulated), on="benchmark", suffixes=("_real", "_sim")
        )
        print(checks.drop(columns=["families_real", "families_sim"]).round(3).to_string(index=False))
    print(f"{len(simulated)} LLMs -> {csv_path}; parameters -> {json_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
