"""How well a mass matrix conditions the leaderboard posterior: the eigenvalues of the
potential's Hessian at posterior draws, whitened by a mass matrix estimated from the fit's
draws. Prints a table.

    python benchmarks/mass_geometry.py FIT.nc [DATA.csv] [--points 3]

NUTS's step size is capped by the largest whitened eigenvalue (stable leapfrog needs
``step < 2 / sqrt(max)``) and its trees grow until they span the widest direction (smallest
eigenvalue): a well-preconditioned posterior has all of them near 1. Mass matrices compared,
each from 1,000 draws (every fourth of the fit's draws of 4 chains, each chain centred on its
mean, as the pooled warm-up does): the sampler's (a dense block over the population-level
sites, a diagonal over the rest), the same plus the regression of every other site on the
block (sites conditionally independent given the population), and a full dense one. The
``top sites`` column says which sites the largest eigenvalue's direction is made of.
The fit must be of the default ``ModelConfig`` on DATA (the model is rebuilt from it).
"""

from __future__ import annotations

import argparse
import os
import sys


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("fit")
    p.add_argument("data", nargs="?", default=os.environ.get("SLOTH_BAYES_DATA"))
    p.add_argument("--points", type=int, default=3, help="posterior draws to evaluate at")
    args = p.parse_args(argv)

    import jax
    import jax.numpy as jnp
    import numpy as np
    import pandas as pd
    from numpyro import handlers
    from numpyro.distributions.transforms import biject_to

    from _model import model_inputs
    from sloth_bayes.inference import FlatSites
    from sloth_bayes.io import load_fit
    from sloth_bayes.model import skills_model

    data, config, margs, kwargs, dense = model_inputs(args.data)
    trace = handlers.trace(handlers.seed(skills_model, rng_seed=0)).get_trace(*margs, **kwargs)
    latent = {n: s for n, s in trace.items() if s["type"] == "sample" and not s["is_observed"]}
    post = load_fit(args.fit).posterior
    z = {n: np.asarray(biject_to(s["fn"].support).inv(np.asarray(post[n].values, np.float32)))
         for n, s in latent.items()}
    layout = FlatSites({n: s["value"].shape for n, s in latent.items()}, dense)
    flat = layout.flatten(z)
    x = np.concatenate([np.asarray(flat[g], np.float64) for g in layout.groups], axis=-1)
    labels = np.concatenate([np.repeat(n, layout.sizes[n])
                             for names in layout.groups.values() for n in names])
    nd = int(flat["dense"].shape[-1])
    chains, draws, dim = x.shape
    sub = x[:, ::4]
    sub = (sub - sub.mean(axis=1, keepdims=True)).reshape(-1, dim)
    cov = np.cov(sub, rowvar=False)

    block = np.diag(np.diag(cov))
    block[:nd, :nd] = cov[:nd, :nd]
    coef = np.linalg.solve(cov[:nd, :nd], cov[:nd, nd:]).T  # other sites on the block
    resid = sub[:, nd:] - sub[:, :nd] @ coef.T
    given = np.zeros_like(cov)
    given[:nd, :nd] = cov[:nd, :nd]
    given[nd:, :nd] = coef @ cov[:nd, :nd]
    given[:nd, nd:] = given[nd:, :nd].T
    given[nd:, nd:] = coef @ cov[:nd, :nd] @ coef.T + np.diag(resid.var(axis=0, ddof=1))
    masses = {"dense block + diagonal (sampler)": block,
              "+ the rest regressed on the block": given,
              "full dense": cov + 1e-6 * np.eye(dim)}

    potential = layout.potential_fn(skills_model, margs, kwargs)
    hessian = jax.jit(jax.hessian(lambda v: potential({"dense": v[:nd], "diag": v[nd:]})))
    rng = np.random.default_rng(0)
    points = x.reshape(-1, dim)[rng.choice(chains * draws, args.points, replace=False)]
    hs = [np.asarray(hessian(jnp.asarray(pt, jnp.float32)), np.float64) for pt in points]
    rows = []
    for name, mass in masses.items():
        chol = np.linalg.cholesky(mass)
        for i, h in enumerate(hs):
            w, v = np.linalg.eigh(chol.T @ (h + h.T) / 2 @ chol)
            top = pd.Series(v[:, -1] ** 2, index=labels).groupby(level=0).sum().nlargest(3)
            rows.append({"mass": name, "draw": i, "largest": w[-1], "smallest_positive": w[w > 0].min(),
                         "negative": int((w < 0).sum()),
                         "top sites": ", ".join(f"{k} {s:.2f}" for k, s in top.items())})
    table = pd.DataFrame(rows)
    print(f"{dim} unconstrained dimensions, {nd} in the dense block; {len(sub)} draws per estimate")
    with pd.option_context("display.width", 200, "display.max_colwidth", 80):
        print(table.round(4).to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
