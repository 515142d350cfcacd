"""Correlation of the coarse families' posterior efficiencies with their covariates (stop 27).

    python reports/stop27/efficiency_vs_covariates.py fit.nc   # e.g. the default full fit, seed 2
"""
import sys
from sloth_bayes.io import load_fit
import numpy as np, pandas as pd
idata = load_fit(sys.argv[1])
post = idata['posterior']; cd = idata['constant_data']
z = post['z_coarse'].mean(('chain','draw')).to_pandas()
llm = pd.DataFrame({'coarse': cd['llm_coarse_family'].values, 'tok': cd['llm_tokens_z'].values,
                    'size': cd['llm_size_z'].values, 'inst': cd['llm_instruct'].values})
g = llm.groupby('coarse').agg(tok=('tok','mean'), size=('size','min'), n=('tok','size'))
df = z.join(g)
df['z2'] = (z**2).mean(axis=1)
df = df.sort_values('tok')
pd.set_option('display.width',200)
print(df.round(2).to_string())
print('corr |z| vs tok', np.corrcoef(np.sqrt(df.z2), df.tok)[0,1])
print('corr log z2 vs tok', np.corrcoef(np.log(df.z2), df.tok)[0,1])
for s in z.columns:
    print(s, np.corrcoef(np.abs(df[s]), df.tok)[0,1])
d = df.dropna()
print(len(d))
for s in list(z.columns)+['z2']:
    print(s, 'corr with tok %.2f' % np.corrcoef(d[s], d.tok)[0,1], ' |.| %.2f' % np.corrcoef(np.abs(d[s]), d.tok)[0,1], 'size %.2f' % np.corrcoef(d[s], d['size'])[0,1])
a = post['alpha_coarse'].mean(('chain','draw')).to_pandas().loc[d.index]
print(a.round(2).join(d.tok).corr().round(2))
sl = post['slopes'].mean(('chain','draw')).to_pandas(); print(sl.round(3))
print(post['sigma_coarse'].mean(('chain','draw')).values)
