"""Time forecasts from a fit: query batches of growing size, one row per batch.

    python benchmarks/forecast_speed.py [--fit fit.nc] [--queries 1,10,100 --repeat 3 --seed 0]

Without ``--fit`` it first fits the embedded table at reduced draws (2 chains x 200 after 200
warm-up; the forecast's cost grows with the number of posterior draws, so pass a default fit,
e.g. ``out/fit.nc`` of ``scripts/main.sh``, to time what users get). Queries are the table's
own LLMs (observed families) and the same LLMs renamed into a new family, alternating.
Columns: queries, benchmarks, posterior draws, best-of-``repeat`` seconds of
``SlothBayes.forecast`` and milliseconds per query.
"""

from __future__ import annotations

import argparse
import sys
import time


def _queries(table, n: int):
    """``n`` query LLMs: rows of ``table``, every second one moved into a family never seen."""
    import pandas as pd

    from sloth_bayes.data import FAMILY, META_COLUMNS, MODEL, SUBFAMILY

    rows = pd.concat([table] * (n // len(table) + 1), ignore_index=True).iloc[:n][list(META_COLUMNS)].copy()
    rows[MODEL] = [f"query-{i}" for i in range(n)]
    new = rows.index % 2 == 1
    rows.loc[new, FAMILY] = "unseen-family"
    rows.loc[new, SUBFAMILY] = "unseen-family"
    return rows


def measure(model, table, sizes, *, repeat: int = 3, seed: int = 0):
    """Best-of-``repeat`` seconds of ``model.forecast`` for batches of ``sizes`` queries drawn
    from ``table`` (a DataFrame, one row per batch size)."""
    import warnings

    import pandas as pd

    post = model.idata_.posterior
    n_draws = post.sizes["chain"] * post.sizes["draw"]
    rows = []
    for n in sizes:
        queries = _queries(table, n)
        best = float("inf")
        for r in range(repeat):
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the new-family warning
                fc = model.forecast(queries, seed=seed + r)
            best = min(best, time.perf_counter() - t0)
        rows.append({"queries": n, "benchmarks": fc["benchmark"].nunique(), "draws": n_draws,
                     "seconds": round(best, 3), "ms_per_query": round(1000 * best / n, 1)})
    return pd.DataFrame(rows)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--fit", default=None, help="a saved fit (netCDF); default: a quick fit")
    p.add_argument("--queries", default="1,10,100", help="comma list of batch sizes")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    import numpyro

    numpyro.set_host_device_count(2)
    from sloth_bayes import SlothBayes
    from sloth_bayes.datasets import load_leaderboard

    table = load_leaderboard()
    if args.fit:
        model = SlothBayes.load(args.fit)
    else:
        model = SlothBayes(chains=2, warmup=200, draws=200).fit(table, seed=args.seed, progress_bar=False)
    rows = measure(model, table, [int(v) for v in args.queries.split(",")], repeat=args.repeat,
                   seed=args.seed)
    print(rows.to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
