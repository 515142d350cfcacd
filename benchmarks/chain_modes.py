"""Does the posterior have more than one mode? Chains started apart, and saved fits compared.

    SLOTH_BAYES_DATA=leaderboard_v2.csv python benchmarks/chain_modes.py --seed 6 [--option NAME=VALUE] [--out fit.nc]
    python benchmarks/chain_modes.py --fits fit_a.nc fit_b.nc ...

Every chain of a default fit starts near the best of the SVI restarts (``svi_init``,
``chain_inits``), so chains that share a mode agree and R-hat cannot tell whether the
posterior has another one. The first form fits the table with chain ``i`` started at SVI
restart ``i`` instead (as many restarts as chains; the model's density, not the centred
coordinates, so the chains' log densities compare) and prints, per chain, its mean log
density, the last anchor's loadings (IFEval with four skills; with ``pure_anchors=false`` its
loadings on the earlier skills set how that skill is rotated against them) and every
benchmark's loading on the last skill (a mode of pure anchors reverses some), then R-hat. The second form prints the
same loadings per chain of saved fits: fits of one table that sit in different modes differ
there by far more than their chains do.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np


def _anchor_rows(idata) -> tuple[str, np.ndarray]:
    """The last skill's anchor (its loading on that skill is fixed at 1) and its loadings,
    per chain (chain, K)."""
    lam = idata.posterior["loadings"]
    row = int(np.flatnonzero(np.all(lam.isel(skill=-1).values == 1.0, axis=(0, 1)))[0])
    return str(lam.coords["benchmark"].values[row]), lam.isel(benchmark=row).mean("draw").values


def _print_fit(label: str, idata) -> None:
    name, rows = _anchor_rows(idata)
    last = idata.posterior["loadings"].isel(skill=-1).mean("draw").values  # (chain, J)
    lp = idata.sample_stats["lp"].mean("draw").values if "lp" in idata.sample_stats else [np.nan] * len(rows)
    for c, (r, l) in enumerate(zip(rows, lp)):
        print(f"{label:<28} chain {c}  mean log density {l:9.1f}  {name} loadings {[round(float(v), 2) for v in r]}"
              f"  every benchmark's loading on the last skill {[round(float(v), 2) for v in last[c]]}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("data", nargs="?", default=os.environ.get("SLOTH_BAYES_DATA"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="save the fit (netCDF)")
    p.add_argument("--fits", nargs="+", default=None, help="saved fits to compare instead")
    p.add_argument("--option", action="append", help="model option NAME=VALUE (as `sloth-bayes fit`)")
    args = p.parse_args(argv)
    import arviz as az

    if args.fits:
        for path in args.fits:
            _print_fit(os.path.basename(path), az.from_netcdf(path))
        return 0
    if not args.data:
        p.error("give DATA or set SLOTH_BAYES_DATA")

    import jax
    import numpyro
    import pandas as pd

    numpyro.set_host_device_count(4)
    from sloth_bayes import SlothBayes
    from sloth_bayes import inference as inf
    from sloth_bayes.cli import model_config
    from sloth_bayes.diagnostics import convergence_report

    def every_restart(data, config, key, restarts, steps):  # svi_init without picking the best
        fit = jax.jit(lambda keys: inf.svi_restarts(inf.skills_model, (data, config), {"y": data.y}, keys, steps))
        loc, scale, losses = fit(jax.random.split(key, restarts))
        print("SVI restarts' losses", np.round(np.asarray(losses), 1).tolist(), flush=True)
        return (loc, scale), [float(v) for v in losses]

    def one_restart_per_chain(loc, scale, chains, jitter, key):  # chain i at restart i's mean
        return jax.tree.map(lambda a: a[:chains], loc)

    # run_nuts looks both up in the module: the only two steps that differ from a default fit
    inf.svi_init, inf.chain_inits = every_restart, one_restart_per_chain
    model = SlothBayes(config=model_config(args.option), adaptive_centring=False).fit(pd.read_csv(args.data), seed=args.seed, progress_bar=False)
    _print_fit(f"seed {args.seed}, chains apart", model.idata_)
    report = convergence_report(model.idata_)
    print(f"max R-hat {report.max_rhat:.3f} at {report.max_rhat_parameter}")
    if args.out:
        model.save(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
