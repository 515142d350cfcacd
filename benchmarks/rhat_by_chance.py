"""How large would a fit's max R-hat be if its chains agreed perfectly? Prints a table.

    python benchmarks/rhat_by_chance.py FIT.nc [FIT2.nc ...] [--reps 5 --seed 0]

R-hat of chains that sample the same distribution is not exactly 1: it scatters by about
1 / (bulk ESS per chain). Over ~1,500 parameters the largest of those scatters can pass 1.01
by chance alone. For each fit this script takes every parameter the convergence check
looks at (``diagnostics.checked_parameters``: free entries, folded loadings once), replaces
its draws by stationary AR(1) chains of the same shape whose autocorrelation gives the
parameter's own bulk ESS (``rho = (n - ess) / (n + ess)``, ``n`` all draws), and computes
their rank-normalised R-hat with ArviZ, ``--reps`` times. Columns: the fit's max R-hat and
number of entries above 1.01; the same for the simulated, perfectly agreeing chains (median
and range over the repetitions). A fit whose max R-hat sits inside the simulated range
misses 1.01 by Monte Carlo noise, not because its chains disagree; only more ESS per
parameter (a better parameterisation or more draws) brings it under.
"""

from __future__ import annotations

import argparse
import sys
import warnings

import numpy as np


def _checked(idata) -> dict:
    """Per variable, (rhat, bulk ESS) of the entries the convergence check uses."""
    import arviz as az

    from sloth_bayes.diagnostics import checked_parameters

    post, masks = checked_parameters(idata)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        rhat, ess = az.rhat(post), az.ess(post, method="bulk")
    out = {}
    for name in post.data_vars:
        m = masks[name].values.ravel()
        r, e = rhat[name].values.ravel()[m], ess[name].values.ravel()[m]
        ok = np.isfinite(r) & np.isfinite(e)
        out[name] = (r[ok], e[ok])
    return out


def simulated_rhat(ess: np.ndarray, chains: int, draws: int, rng) -> np.ndarray:
    """Rank-normalised R-hat of AR(1) chains, one per entry of ``ess``, with that bulk ESS."""
    import arviz as az
    import xarray as xr

    n = chains * draws
    rho = np.clip((n - ess) / (n + ess), 0.0, 0.999)
    eps = rng.standard_normal((chains, draws, ess.size))
    x = np.empty_like(eps)
    x[:, 0] = eps[:, 0]  # stationary start: every chain samples the same N(0, 1)
    scale = np.sqrt(1.0 - rho**2)
    for t in range(1, draws):
        x[:, t] = rho * x[:, t - 1] + scale * eps[:, t]
    return az.rhat(xr.Dataset({"p": (("chain", "draw", "entry"), x)}))["p"].values


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("fits", nargs="+")
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=float, default=1.01)
    args = p.parse_args(argv)

    from sloth_bayes import SlothBayes

    rng = np.random.default_rng(args.seed)
    header = ("fit", "entries", "min ESS", "median ESS", "max R-hat", f"n > {args.limit}",
              "chance max R-hat (median, range)", f"chance n > {args.limit}")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for path in args.fits:
        model = SlothBayes.load(path)
        post = model.idata_.posterior
        chains, draws = int(post.sizes["chain"]), int(post.sizes["draw"])
        stats = _checked(model.idata_)
        rhat = np.concatenate([r for r, _ in stats.values()])
        ess = np.concatenate([e for _, e in stats.values()])
        sims = [simulated_rhat(ess, chains, draws, rng) for _ in range(args.reps)]
        maxes = np.array([s.max() for s in sims])
        over = np.array([(s > args.limit).sum() for s in sims])
        print(
            f"| {path} | {rhat.size} | {ess.min():.0f} | {np.median(ess):.0f} | {rhat.max():.4f} | "
            f"{(rhat > args.limit).sum()} | {np.median(maxes):.4f} ({maxes.min():.4f}-{maxes.max():.4f}) | "
            f"{np.median(over):.0f} ({over.min()}-{over.max()}) |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
