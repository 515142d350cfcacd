"""What the lofo-1 diagnosis scripts (``width_sources.py``, ``error_components.py``) share:
their command line and one fit per held-out group."""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator

import pandas as pd


def fitted_folds(doc: str, argv=None) -> Iterator[tuple]:
    """Parse ``GROUP ... [--data --set --seed --chains --warmup --draws]`` (``doc``'s first
    line is the help text) and yield ``(fold, model, benches, args)`` per group: the group's
    lofo-1 fold (:func:`sloth_bayes.backtest.folds`), the default model fitted to its
    training table, and the set's benchmark columns."""
    from sloth_bayes import SlothBayes
    from sloth_bayes.backtest import SETS, folds

    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("groups", nargs="+", help="names of backtest.GROUPS or sub-families in them")
    p.add_argument("--data", default=os.environ.get("SLOTH_BAYES_DATA"))
    p.add_argument("--set", default="all", choices=sorted(SETS))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--chains", type=int, default=2)
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--draws", type=int, default=200)
    args = p.parse_args(argv)
    if not args.data:
        p.error("give --data or set SLOTH_BAYES_DATA to the leaderboard table")
    table = pd.read_csv(args.data)
    benches = [b for b in SETS[args.set] if b in table.columns]
    for group in args.groups:
        found = folds(table, args.set, "lofo-1", groups=[group])
        if not found:
            p.error(f"no lofo-1 fold of {group!r} on set {args.set}")
        model = SlothBayes(chains=args.chains, warmup=args.warmup, draws=args.draws)
        model.fit(found[0].train, seed=args.seed, progress_bar=False)
        yield found[0], model, benches, args
