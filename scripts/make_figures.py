"""Draw the README's figure from a saved fit of the main command.

    bash scripts/main.sh                 # writes out/fit.nc (qwen1.5 seen through its 0.5B)
    python scripts/make_figures.py [out/fit.nc] [--family qwen1.5] [--out docs/figures]

Fan charts of the sub-family's forecasts against size on three benchmarks: the posterior
predictive median and 50% / 90% bands, the model the fit saw as a filled point, the held-out
models' true scores as open points, the chance floor dotted.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("fit", nargs="?", default=str(ROOT / "out" / "fit.nc"))
    p.add_argument("--family", default="qwen1.5")
    p.add_argument("--benchmarks", nargs="+", default=["MMLU", "BBH", "MATH Lvl 5"])
    p.add_argument("--out", default=str(ROOT / "docs" / "figures"))
    args = p.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sloth_bayes import SlothBayes, plots
    from sloth_bayes.datasets import load_leaderboard

    model = SlothBayes.load(args.fit)
    table = load_leaderboard()
    fig, axes = plt.subplots(1, len(args.benchmarks), figsize=(3.6 * len(args.benchmarks), 3.0),
                             layout="constrained", squeeze=False)
    for ax, bench in zip(axes[0], args.benchmarks):
        plots.fan_chart(model, args.family, bench, table=table, ax=ax)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"forecast_{args.family}.png"
    fig.savefig(path, dpi=90)
    print(f"{path} ({path.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
