# Needs the stop-27 experiment commit 1475158 (ModelConfig.efficiency_covariates, reverted since):
#   git checkout 1475158 -- sloth_bayes && SLOTH_BAYES_DATA=leaderboard_v2.csv python reports/stop27/full_fit_efficiency_covariates.py
import numpyro; numpyro.set_host_device_count(4)
import os, time
import pandas as pd
from sloth_bayes import SlothBayes
from sloth_bayes.model import ModelConfig
from sloth_bayes.diagnostics import convergence_report
t = pd.read_csv(os.environ["SLOTH_BAYES_DATA"])
t0 = time.perf_counter()
m = SlothBayes(config=ModelConfig(efficiency_covariates=("smallest_log_size", "mean_log_tokens"))).fit(t, seed=0, progress_bar=False)
print("seconds", round(time.perf_counter() - t0))
r = convergence_report(m.idata_); print("rhat", r.max_rhat, r.max_rhat_parameter, "ess", r.min_ess_bulk, "div", r.divergences)
p = m.idata_["posterior"]
b = p["efficiency_slopes"]
print("efficiency_slopes mean\n", b.mean(("chain","draw")).to_pandas().round(3))
print("sd\n", b.std(("chain","draw")).to_pandas().round(3))
print("sigma_coarse", p["sigma_coarse"].mean(("chain","draw")).values.round(3))
print("slopes\n", p["slopes"].mean(("chain","draw")).to_pandas().round(3))
