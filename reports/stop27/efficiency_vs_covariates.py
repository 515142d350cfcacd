"""Correlation of the coarse families' posterior efficiencies with their covariates (stop 27).

    python reports/stop27/efficiency_vs_covariates.py fit.nc   # e.g. the default full fit, seed 2

Prints each family's posterior-mean standardised efficiency ``z_coarse`` per skill beside its
mean standardised log tokens and its smallest model's standardised log size, then, over the
families with known token counts, the correlation of each skill's efficiency with both.
"""

import sys

import numpy as np
import pandas as pd

from sloth_bayes.io import load_fit

idata = load_fit(sys.argv[1])
cd = idata["constant_data"]
z = idata["posterior"]["z_coarse"].mean(("chain", "draw")).to_pandas()
llms = pd.DataFrame({"family": cd["llm_coarse_family"].values, "tokens": cd["llm_tokens_z"].values,
                     "size": cd["llm_size_z"].values})
fams = llms.groupby("family").agg(tokens=("tokens", "mean"), smallest=("size", "min"))
df = z.join(fams).sort_values("tokens")
print(df.round(2).to_string())
known = df.dropna()
print(f"\n{len(known)} families with known token counts")
for skill in z.columns:
    r_tok, r_size = (np.corrcoef(known[skill], known[c])[0, 1] for c in ("tokens", "smallest"))
    print(f"{skill}: corr with mean log tokens {r_tok:.2f}, with smallest log size {r_size:.2f}")
