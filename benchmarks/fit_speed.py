"""Time the default fit of the leaderboard table and print a table.

    python benchmarks/fit_speed.py [DATA.csv] [--chains 4 --warmup 1000 --draws 1000
                                             --chain-method parallel --seed 0 --repeat 1
                                             --option NAME=VALUE --sampler-option NAME=VALUE]

DATA defaults to ``$SLOTH_BAYES_DATA`` or the embedded table. One row per fit (seeds seed,
seed + 1, ...): SVI initialisation, NUTS (compilation + warm-up + sampling), total wall time,
min bulk ESS and ESS per second over all free parameters, divergences, max R-hat, the
parameters where the worst R-hat and bulk ESS are, JAX backend. Compilation is part of the
NUTS figure (NumPyro compiles inside ``run``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time


def measure_fits(table, seeds, *, chains=4, warmup=1000, draws=1000, skills=None, options=None,
                 chain_method="parallel", save=None, **sampler):
    """Fit ``table`` once per seed with the default model; one row of timings and convergence
    figures per fit (a DataFrame). ``save``: write the first fit there."""
    import pandas as pd

    from sloth_bayes import SlothBayes
    from sloth_bayes.cli import model_config
    from sloth_bayes.diagnostics import convergence_report

    rows = []
    for i, seed in enumerate(seeds):
        t0 = time.perf_counter()
        model = SlothBayes(skills, config=model_config(options), chains=chains, warmup=warmup,
                           draws=draws, chain_method=chain_method, **sampler)
        model.fit(table, seed=seed, progress_bar=False)
        total = time.perf_counter() - t0
        if save and i == 0:
            model.save(save)
        info = model.fit_info_
        rep = convergence_report(model.idata_)
        rows.append(
            {
                "seed": seed,
                "svi_s": round(info["svi_seconds"], 1),
                "nuts_s": round(info["nuts_seconds"], 1),
                "total_s": round(total, 1),
                "min_ess_bulk": round(rep.min_ess_bulk),
                "min_ess_per_s": round(rep.min_ess_bulk / total, 2),
                "divergences": rep.divergences,
                "max_rhat": round(rep.max_rhat, 4),
                "converged": bool(rep.ok),
                "max_rhat_at": rep.max_rhat_parameter,
                "min_ess_at": rep.min_ess_bulk_parameter,
                "backend": info["jax_backend"],
                "chains": f"{chains} {info['chain_method_used']}",
                "cores": os.cpu_count(),
            }
        )
    return pd.DataFrame(rows)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("data", nargs="?", default=None, help="CSV table (default: the embedded one)")
    p.add_argument("--chains", type=int, default=4)
    p.add_argument("--warmup", type=int, default=1000)
    p.add_argument("--draws", type=int, default=1000)
    p.add_argument("--skills", type=int, default=None)
    p.add_argument("--chain-method", default="parallel")
    p.add_argument("--seed", type=int, default=0, help="seed of the first fit")
    p.add_argument("--repeat", type=int, default=1, help="fits with seeds seed, seed + 1, ...")
    p.add_argument("--save", default=None, help="write the first fit here (netCDF), e.g. for compare")
    p.add_argument("--option", action="append", help="model option NAME=VALUE (as `sloth-bayes fit`)")
    p.add_argument("--sampler-option", action="append", default=[],
                   help="SamplerConfig field NAME=VALUE (a number), e.g. max_tree_depth=8")
    args = p.parse_args(argv)

    import numpyro

    numpyro.set_host_device_count(args.chains)
    import pandas as pd

    from sloth_bayes.datasets import find_leaderboard

    table = pd.read_csv(find_leaderboard(args.data))
    sampler = {k: float(v) if "." in v else int(v) for k, v in (o.split("=", 1) for o in args.sampler_option)}
    rows = measure_fits(table, [args.seed + r for r in range(args.repeat)], chains=args.chains,
                        warmup=args.warmup, draws=args.draws, skills=args.skills, options=args.option,
                        chain_method=args.chain_method, save=args.save, **sampler)
    print(rows.to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
