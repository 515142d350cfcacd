"""Cost of one NUTS leapfrog step on the leaderboard model: NumPyro's state (one leaf per
site) against the flat state sloth_bayes samples (:class:`sloth_bayes.inference.FlatSites`),
and the gradient alone. Prints a table.

    python benchmarks/step_cost.py [DATA.csv] [--steps 25000]

Each NUTS variant runs with a fixed tiny step size, a fixed mass matrix (the default dense
block) and tree depth 6, so every iteration takes exactly 63 leapfrog steps; the cost per
step is the difference of a long and a short run (compilation cancels) over the difference
in steps. One chain, the same start for all. Compare the ratio column, measured in one run.
"""

from __future__ import annotations

import argparse
import os
import sys
import time


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("data", nargs="?", default=os.environ.get("SLOTH_BAYES_DATA"))
    p.add_argument("--steps", type=int, default=25000, help="leapfrog steps of the long run")
    args = p.parse_args(argv)

    import jax
    import numpy as np
    import pandas as pd
    from numpyro.infer import MCMC, NUTS

    from _model import model_inputs
    from sloth_bayes.inference import FlatSites, chain_inits, svi_init
    from sloth_bayes.model import skills_model

    data, config, margs, kwargs, dense = model_inputs(args.data)
    params, _ = svi_init(data, config, jax.random.PRNGKey(0), 4, 3000)
    init = {k: v[0] for k, v in chain_inits(*params, 1, 0.5, jax.random.PRNGKey(1)).items()}
    layout = FlatSites.of_model(skills_model, margs, kwargs, dense)
    fixed = dict(step_size=1e-4, adapt_step_size=False, adapt_mass_matrix=False, max_tree_depth=6)
    per_iter = 2**6 - 1

    def sites_run(n):
        kernel = NUTS(skills_model, dense_mass=[dense], **fixed)
        mcmc = MCMC(kernel, num_warmup=0, num_samples=n, progress_bar=False)
        mcmc.run(jax.random.PRNGKey(2), *margs, init_params=init, **kwargs)
        return mcmc

    def flat_run(n):
        kernel = NUTS(potential_fn=layout.potential_fn(skills_model, margs, kwargs),
                      dense_mass=layout.dense_mass, **fixed)
        mcmc = MCMC(kernel, num_warmup=0, num_samples=n, progress_bar=False,
                    postprocess_fn=layout.postprocess_fn(skills_model, margs, kwargs))
        mcmc.run(jax.random.PRNGKey(2), init_params=layout.flatten(init))
        return mcmc

    def timed(fn, n):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(n).get_samples())
        return time.perf_counter() - t0

    long_iters = max(2, args.steps // per_iter)
    rows = []
    for name, fn in (("numpyro sites", sites_run), ("flat (sloth_bayes)", flat_run)):
        first = timed(fn, 1)  # compiles
        short, long = timed(fn, 1), timed(fn, long_iters)
        rows.append({"state": name, "us_per_step": 1e6 * (long - short) / ((long_iters - 1) * per_iter),
                     "first_run_s": first})

    # the gradient alone, in a compiled loop of ``n`` evaluations (each depends on the last)
    grad = jax.grad(layout.potential_fn(skills_model, margs, kwargs))
    loop = jax.jit(lambda z, n: jax.lax.fori_loop(
        0, n, lambda i, z: jax.tree.map(lambda a, g: a - 1e-9 * g, z, grad(z)), z), static_argnums=1)
    z = layout.flatten(init)
    n = long_iters * per_iter
    cost = []
    for m in (1, n):
        jax.block_until_ready(loop(z, m))
        t0 = time.perf_counter()
        jax.block_until_ready(loop(z, m))
        cost.append(time.perf_counter() - t0)
    rows.append({"state": "gradient alone", "us_per_step": 1e6 * (cost[1] - cost[0]) / (n - 1),
                 "first_run_s": np.nan})
    table = pd.DataFrame(rows)
    table["ratio_to_flat"] = table["us_per_step"] / table.loc[1, "us_per_step"]
    print(f"{os.cpu_count()} cores, JAX {jax.default_backend()}, {long_iters * per_iter} steps")
    print(table.round(2).to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
