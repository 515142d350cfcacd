"""Point baselines: exact fits of noiseless tables generated from their own structure."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from sloth_bayes.baselines import FLOPS, FlopsSigmoid, PointSkillsLaw, fill_tokens, log_flops
from sloth_bayes.benchmarks import V1_BENCHMARKS, benchmark_table
from sloth_bayes.data import FAMILY, INSTRUCT, MODEL, SIZE, SUBFAMILY, TOKENS

BENCH = list(V1_BENCHMARKS)
FLOOR = benchmark_table().loc[BENCH, "floor"].to_numpy(float)
SIZES = (0.3, 1.0, 3.0, 7.0, 13.0, 30.0)


def _design(seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for c in range(4):
        tokens = rng.uniform(0.3, 3.0)
        for s, suffix in enumerate(("", "-chat")):
            sub = f"fam{c}{suffix}"
            for size in SIZES[c % 2 :: 1][:5]:
                rows.append(
                    {MODEL: f"{sub}-{size}b", FAMILY: f"fam{c}", SUBFAMILY: sub, INSTRUCT: bool(s),
                     SIZE: size, TOKENS: tokens * (1 + 0.1 * np.log(size))}
                )
    return pd.DataFrame(rows), rng


def _skills_table(seed=0, k=2):
    """Noiseless scores from the PointSkillsLaw structure itself."""
    table, rng = _design(seed)
    subs = list(pd.unique(table[SUBFAMILY]))
    alpha = {s: rng.normal(0, 0.7, k) for s in subs}
    slopes = rng.normal(0, 0.6, (3, k))
    slopes[0] = np.abs(slopes[0]) + 0.5  # skills grow with size
    loadings = rng.uniform(0.3, 1.2, (len(BENCH), k))
    difficulty = rng.normal(-0.5, 0.5, len(BENCH))
    ls, lt = np.log(table[SIZE].to_numpy()), np.log(table[TOKENS].to_numpy())
    zs, zt = (ls - ls.mean()) / ls.std(), (lt - lt.mean()) / lt.std()
    x = np.stack([zs, zt, zs * zt], -1)
    theta = np.stack([alpha[s] for s in table[SUBFAMILY]]) + x @ slopes
    mu = FLOOR + (1 - FLOOR) * expit(theta @ loadings.T + difficulty)
    table[BENCH] = mu
    return table


def _split(table, largest=1):
    """Hold out the largest model(s) of every sub-family."""
    test_idx = table.sort_values(SIZE, kind="stable").groupby(SUBFAMILY).tail(largest).index
    return table.drop(index=test_idx), table.loc[test_idx]


def _error(pred: pd.DataFrame, truth: pd.DataFrame) -> np.ndarray:
    long = truth.melt(id_vars=[MODEL], value_vars=BENCH, var_name="benchmark", value_name="truth")
    m = pred.merge(long.rename(columns={MODEL: "model"}), on=["model", "benchmark"])
    assert len(m) == len(truth) * len(BENCH)
    return (m["prediction"] - m["truth"]).to_numpy()


def test_point_skills_law_fits_noiseless_table():
    table = _skills_table()
    train, test = _split(table)
    # a few missing cells: the loss uses observed cells only
    train = train.copy()
    train.iloc[[0, 5, 9], [6, 8, 10]] = np.nan
    model = PointSkillsLaw(n_skills=2, l2=1e-7, restarts=4, seed=1).fit(train, BENCH)
    assert np.sqrt(np.mean(_error(model.predict(train), train.fillna(table))**2)) < 0.005
    assert np.abs(_error(model.predict(test), test)).mean() < 0.01
    assert (model.params_["loadings"] >= 0).all()
    out = model.predict(test)
    assert list(out.columns) == ["model", "benchmark", "prediction"]
    assert out["prediction"].between(0, 1).all()


def test_point_skills_law_new_families_use_population_means():
    table = _skills_table()
    model = PointSkillsLaw(n_skills=2, restarts=1).fit(table, BENCH)
    base = table[table[SUBFAMILY] == "fam0"].iloc[[2]]
    queries = pd.concat(
        [
            base.assign(**{MODEL: "new-sub", SUBFAMILY: "fam0-community"}),
            base.assign(**{MODEL: "new-fam", FAMILY: "unknown", SUBFAMILY: "unknown"}),
        ]
    )
    a = model.params_["alpha"]
    subs = model.subfamilies_
    fam0 = a[[subs.index("fam0"), subs.index("fam0-chat")]].mean(0)
    x = model._design(queries)
    for row, intercept in zip(range(2), (fam0, a.mean(0))):
        theta = intercept + x[row] @ model.params_["slopes"]
        expect = FLOOR + (1 - FLOOR) * expit(model.params_["loadings"] @ theta + model.params_["difficulty"])
        np.testing.assert_allclose(model.predict_matrix(queries)[row], expect, rtol=1e-10)


def _flops_table(seed=0):
    table, rng = _design(seed)
    lf = np.log(6 * table[SIZE] * table[TOKENS]).to_numpy()
    slopes = rng.uniform(0.3, 1.0, len(BENCH))
    offsets = rng.normal(-1.0, 0.5, len(BENCH))
    subs = list(pd.unique(table[SUBFAMILY]))
    a = {s: rng.normal(0, 0.5, len(BENCH)) for s in subs}
    logit = np.stack([a[s] for s in table[SUBFAMILY]]) + lf[:, None] * slopes + offsets
    table[BENCH] = FLOOR + (1 - FLOOR) * expit(logit)
    return table, slopes


def test_flops_sigmoid_recovers_slopes_and_forecasts():
    table, slopes = _flops_table()
    train, test = _split(table)
    model = FlopsSigmoid(l2=1e-8).fit(train, BENCH)
    fitted = np.array([model.coef_[b]["slope"] for b in BENCH]) / model.flops_scale_
    np.testing.assert_allclose(fitted, slopes, rtol=0.02)
    assert np.abs(_error(model.predict(test), test)).max() < 0.005


def test_flops_sigmoid_new_families():
    table, _ = _flops_table()
    model = FlopsSigmoid().fit(table, BENCH)
    base = table[table[SUBFAMILY] == "fam1"].iloc[[0]]
    queries = pd.concat(
        [
            base.assign(**{MODEL: "new-sub", SUBFAMILY: "fam1-community"}),
            base.assign(**{MODEL: "new-fam", FAMILY: "unknown", SUBFAMILY: "unknown"}),
        ]
    )
    pred = model.predict_matrix(queries)
    z = (np.log(6 * base[SIZE].iloc[0] * base[TOKENS].iloc[0]) - model.flops_loc_) / model.flops_scale_
    for j, b in enumerate(BENCH):
        co = model.coef_[b]
        fam1 = np.mean([co["intercepts"]["fam1"], co["intercepts"]["fam1-chat"]])
        for row, a in ((0, fam1), (1, 0.0)):
            expect = FLOOR[j] + (1 - FLOOR[j]) * expit(a + co["slope"] * z + co["offset"])
            assert pred[row, j] == pytest.approx(expect, rel=1e-10)


def test_flops_column_wins_and_tokens_fill():
    df = pd.DataFrame(
        {MODEL: ["a", "b", "c"], FAMILY: ["f", "f", "g"], SIZE: [1.0, 2.0, 3.0],
         TOKENS: [1.0, np.nan, np.nan], FLOPS: [100.0, np.nan, np.nan]}
    )
    lt = fill_tokens(df, {"f": np.log(1.0)}, np.log(4.0))
    np.testing.assert_allclose(lt, np.log([1.0, 1.0, 4.0]))  # own family, else global
    lf = log_flops(df, lt)
    np.testing.assert_allclose(lf, np.log([100.0, 6 * 2 * 1.0, 6 * 3 * 4.0]))


def test_missing_tokens_are_filled():
    table = _skills_table()
    table.loc[table.index[:4], TOKENS] = np.nan
    for cls in (PointSkillsLaw, FlopsSigmoid):
        pred = cls().fit(table, BENCH).predict(table)
        assert pred["prediction"].notna().all()


def test_predict_before_fit_raises():
    for cls in (PointSkillsLaw, FlopsSigmoid):
        with pytest.raises(RuntimeError, match="not fitted"):
            cls().predict(_skills_table().head(1))


def test_point_skills_law_basis_and_stored_form():
    """Which intercept a query uses, and a stored law that predicts exactly as the fitted one."""
    import json

    table = _skills_table()
    model = PointSkillsLaw(n_skills=2, restarts=1).fit(table, BENCH)
    base = table[table[SUBFAMILY] == "fam0"].iloc[[2]]
    queries = pd.concat([
        base,
        base.assign(**{MODEL: "new-sub", SUBFAMILY: "fam0-community"}),
        base.assign(**{MODEL: "new-fam", FAMILY: "unknown", SUBFAMILY: "unknown"}),
    ])
    assert list(model.basis(queries)) == ["sub-family", "coarse family", "population"]
    back = PointSkillsLaw.from_dict(json.loads(json.dumps(model.to_dict())))
    np.testing.assert_array_equal(back.predict_matrix(queries), model.predict_matrix(queries))
    assert list(back.basis(queries)) == list(model.basis(queries))
    with pytest.raises(ValueError, match="format"):
        PointSkillsLaw.from_dict({**model.to_dict(), "format": "other/9"})
    with pytest.raises(Exception, match="not fitted"):
        PointSkillsLaw().to_dict()
