"""Backtest: fold construction, fit caching, scoring pipeline, outputs, command line.

Most tests use a calibrated stand-in model (no sampling); one end-to-end test runs the real
sampler on a small simulated table, and a ``slow`` one runs LOFO-1 on the real table.
"""

from __future__ import annotations

import os
import time

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from sloth_bayes.backtest import GROUPS, PROTOCOLS, SETS, folds, run_backtest, summary_markdown, write_backtest
from sloth_bayes.benchmarks import DEFAULT_BENCHMARKS
from sloth_bayes.data import FAMILY, INSTRUCT, MODEL, SIZE, SUBFAMILY, TOKENS, score_columns

BENCH = list(DEFAULT_BENCHMARKS)


# -- a synthetic table with real family names, so the default groups apply ------------------
def synthetic_table(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    subs = [
        ("bloom", "bloom", False, (0.56, 1.1, 3.0, 7.1, 176.0)),
        ("falcon", "falcon", False, (1.0, 7.0, 40.0, 180.0)),
        ("falcon", "falcon-instruct", True, (7.0, 7.0, 40.0)),  # a tie at the smallest size
        ("olmo", "olmo", False, (1.0, 7.0)),
        ("llama", "llama", False, (7.0, 13.0, 33.0, 65.0)),
        ("llama", "llama-chat", True, (7.0, 13.0, 70.0)),
        ("qwen", "qwen", False, (0.5, 1.8, 7.0, 14.0, 72.0)),
    ]
    skill = {s[1]: rng.normal(0, 0.5) for s in subs}
    slope = rng.uniform(0.3, 0.8, len(BENCH))
    off = rng.normal(-1.5, 0.5, len(BENCH))
    rows = []
    for fam, sub, instruct, sizes in subs:
        tokens = rng.uniform(0.3, 3.0)
        for i, size in enumerate(sizes):
            z = np.log(size) + skill[sub] + 0.3 * instruct
            score = 0.25 + 0.7 / (1 + np.exp(-(slope * z + off))) + rng.normal(0, 0.02, len(BENCH))
            rows.append(
                {MODEL: f"{sub}-{size:g}b-{i}", FAMILY: fam, SUBFAMILY: sub, INSTRUCT: instruct,
                 SIZE: size, TOKENS: tokens, **dict(zip(BENCH, np.clip(score, 0, 1)))}
            )
    table = pd.DataFrame(rows)
    mask = rng.uniform(size=(len(table), len(BENCH))) < 0.1
    table[BENCH] = table[BENCH].mask(mask)
    return table


class OracleModel:
    """Stand-in for SlothBayes: a calibrated Normal predictive centred near the truth.

    The centre is the truth plus N(0, sd) noise and the draws have sd ``sd * width``, so
    ``width=1`` is calibrated and ``width<1`` over-confident. It refuses queries that were
    in its training table (the backtest must never leak).
    """

    def __init__(self, sd: float = 0.03, width: float = 1.0, n_draws: int = 400):
        self.sd, self.width, self.n_draws = sd, width, n_draws

    def fit(self, table, *, seed=0, progress_bar=None):
        self.train_models_ = set(table[MODEL].astype(str))
        self.benchmarks_ = score_columns(table)
        self.fit_info_ = {"svi_seconds": 0.0, "nuts_seconds": 0.0}
        return self

    def predictive_draws(self, queries, *, seed=0):
        leaked = self.train_models_ & set(queries[MODEL].astype(str))
        assert not leaked, f"test models in training: {leaked}"
        rng = np.random.default_rng(seed)
        truth = queries[self.benchmarks_].to_numpy(float)
        truth = np.where(np.isfinite(truth), truth, 0.5)
        centre = truth + self.sd * rng.standard_normal(truth.shape)
        y = centre + self.sd * self.width * rng.standard_normal((self.n_draws,) + truth.shape)
        dims = ("sample", "model", "benchmark")
        return xr.Dataset(
            {"y": (dims, y), "mu": (dims, y), "point": (dims[1:], centre),
             "kind": (("model",), np.array(["observed family"] * len(queries))),
             "point_basis": (("model",), np.array(["sub-family"] * len(queries)))},
            coords={"model": queries[MODEL].astype(str).to_numpy(), "benchmark": self.benchmarks_},
        )


def oracle():
    return OracleModel()


def overconfident():
    return OracleModel(width=0.5)


# -- folds --------------------------------------------------------------------------------------
def test_fold_rules_on_synthetic_table():
    table = synthetic_table()
    for protocol, keep in PROTOCOLS.items():
        if protocol == "future":  # by release date: its own test
            continue
        fs = {f.group: f for f in folds(table, "v2", protocol)}
        assert set(fs) <= {"bloom", "falcon + falcon-instruct", "olmo"}
        for fold in fs.values():
            assert not set(fold.train[MODEL]) & set(fold.test[MODEL])
            assert len(fold.train) + len(fold.test) == len(table)
            assert list(fold.train.index) == sorted(fold.train.index)  # file order kept
        fal = fs["falcon + falcon-instruct"]
        kept = fal.train[fal.train[SUBFAMILY].isin(["falcon", "falcon-instruct"])][MODEL].tolist()
        expect = {
            0: [],
            1: ["falcon-1b-0", "falcon-instruct-7b-0"],  # tie at 7B: the first in file order
            2: ["falcon-1b-0", "falcon-7b-1", "falcon-instruct-7b-0", "falcon-instruct-7b-1"],
        }[keep]
        assert sorted(kept) == sorted(expect)
    # olmo has two models: lofo-2 keeps both, nothing is left to test
    assert "olmo" not in {f.group for f in folds(table, "v2", "lofo-2")}
    # the falcon group differs between sets
    v1 = {f.group for f in folds(table, "v1", "lofo-1")}
    assert v1 == {"bloom", "falcon", "olmo"}


def test_fold_options_and_errors():
    table = synthetic_table()
    assert [f.group for f in folds(table, "v1", groups=["falcon"])] == ["falcon"]
    custom = folds(table, "v1", groups={"llamas": ("llama", "llama-chat")})
    assert [f.group for f in custom] == ["llamas"]
    assert set(custom[0].test[MODEL]) == {"llama-13b-1", "llama-33b-2", "llama-65b-3",
                                          "llama-chat-13b-1", "llama-chat-70b-2"}
    with pytest.raises(ValueError, match="protocol"):
        folds(table, "v1", "lofo-3")
    with pytest.raises(ValueError, match="set"):
        folds(table, "v3")


def test_groups_match_evaluation_md():
    assert {k: len(v) for k, v in GROUPS.items()} == {"v1": 17, "v2": 8, "all": 9}
    assert SETS["all"] == SETS["v1"] + SETS["v2"]


def test_folds_on_real_table(real_table):
    sizes = pd.to_numeric(real_table[SIZE])
    for set_name, n_groups in (("v1", 17), ("v2", 8), ("all", 9)):
        fs = folds(real_table, set_name, "lofo-1")
        assert len(fs) == n_groups, [f.group for f in fs]
        for fold in fs:
            assert not set(fold.train[MODEL]) & set(fold.test[MODEL])
            assert len(fold.train) + len(fold.test) == len(real_table)
            for sub in GROUPS[set_name][fold.group]:
                members = real_table[real_table[SUBFAMILY] == sub]
                kept = fold.train[fold.train[SUBFAMILY] == sub]
                assert len(kept) == 1
                assert kept[SIZE].iloc[0] == sizes[members.index].min()
                # ties: the first in file order
                first = members[sizes[members.index] == sizes[members.index].min()].iloc[0]
                assert kept[MODEL].iloc[0] == first[MODEL]
        zs = folds(real_table, set_name, "zero-shot")
        for fold in zs:
            assert not fold.train[SUBFAMILY].isin(GROUPS[set_name][fold.group]).any()
    # future (shipped release months, cut-off 2024-01): 131 training LLMs, 318 cells of all twelve
    fut = folds(real_table, "all", "future")
    assert len(fut) == 7 and len(fut[0].train) == 131
    assert sum(int(f.test[list(SETS["all"])].notna().to_numpy().sum()) for f in fut) == 318


RELEASE = {"bloom": "2022-07", "falcon": "2023-05", "falcon-instruct": "2024-03", "olmo": "2024-02",
           "qwen": "2024-06", "llama": "2023-02"}  # llama-chat: no date


def test_future_folds_split_by_release_date():
    table = synthetic_table()
    fs = folds(table, "v1", "future", release=RELEASE)
    # one fold per coarse family of the newer sub-families, named after them
    assert [f.group for f in fs] == ["falcon-instruct", "olmo", "qwen"]
    train = fs[0].train
    assert all(f.train is train or f.train.equals(train) for f in fs)  # one training table
    newer = {"falcon-instruct", "olmo", "qwen"}
    sub = table[SUBFAMILY]
    # old and undated sub-families whole; newer ones through their smallest model (ties: file order)
    expect_train = set(table.loc[~sub.isin(newer), MODEL]) | {"falcon-instruct-7b-0", "olmo-1b-0", "qwen-0.5b-0"}
    assert set(train[MODEL]) == expect_train
    assert set(table.loc[sub == "llama-chat", MODEL]) <= set(train[MODEL])  # unknown: kept, never forecast
    tests = {f.group: set(f.test[MODEL]) for f in fs}
    assert tests == {"falcon-instruct": {"falcon-instruct-7b-1", "falcon-instruct-40b-2"}, "olmo": {"olmo-7b-1"},
                     "qwen": {"qwen-1.8b-1", "qwen-7b-2", "qwen-14b-3", "qwen-72b-4"}}
    for f in fs:
        assert len(f.train) + sum(len(g.test) for g in fs) == len(table)
    # a later cut-off: only qwen is new; an earlier one takes falcon in (the group of its coarse family)
    assert [f.group for f in folds(table, "v1", "future", release=RELEASE, cutoff="2024-04")] == ["qwen"]
    early = folds(table, "v1", "future", release=RELEASE, cutoff="2023-01")
    assert [f.group for f in early] == ["falcon + falcon-instruct", "olmo", "llama", "qwen"]  # file order
    assert [f.group for f in folds(table, "v1", "future", release=RELEASE, groups=["qwen"])] == ["qwen"]
    # a Release column of the table serves as well, and without one the shipped table does
    with_col = table.assign(Release=table[SUBFAMILY].map(RELEASE))
    assert [f.group for f in folds(with_col, "v1", "future")] == ["falcon-instruct", "olmo", "qwen"]
    shipped = {f.group for f in folds(table, "v1", "future")}  # olmo 2024-02; qwen 2023-08; bloom old
    assert shipped == {"olmo"}
    with pytest.raises(ValueError, match="month"):
        folds(table, "v1", "future", cutoff="soon")
    with pytest.raises(ValueError, match="mapping"):
        folds(table, "v1", "future", groups={"x": ("qwen",)})


def test_release_months_from_a_column_a_file_or_the_shipped_table(tmp_path):
    from sloth_bayes.releases import release_months, release_table

    shipped = release_table()
    assert len(shipped) == 57 and shipped["qwen1.5"] == "2024-02" and shipped["gpt-j-neo-neox"] == "2021-03"
    t = pd.DataFrame({SUBFAMILY: ["a", "a", "b", "qwen1.5", "c"],
                      "Release": ["2024-03-05", "2023-01", None, None, "not a date"]})
    got = release_months(t)
    assert got["a"] == "2023-01"  # the earliest of its rows
    assert pd.isna(got["b"]) and pd.isna(got["c"])  # none, or unreadable: unknown
    assert got["qwen1.5"] == "2024-02"  # the shipped table fills the rest
    path = tmp_path / "release.csv"
    pd.DataFrame({SUBFAMILY: ["a"], "release": ["2020-06"]}).to_csv(path, index=False)
    given = release_months(t, path)
    assert given["a"] == "2020-06" and pd.isna(given["qwen1.5"])  # a given file is the only source


def test_future_backtest_fits_once_and_scores_each_group_on_its_models(tmp_path):
    table = synthetic_table()
    res = run_backtest(table, sets=("v1", "v2"), protocol="future", release=RELEASE, model_factory=oracle,
                       verbose=False)
    assert len(res.fits) == 1  # every group and set from one training table
    c = res.cells
    assert (c["protocol"] == "future").all() and res.settings["cutoff"] == "2024-01"
    for (set_name, group), block in c.groupby(["set", "group"]):
        fold = next(f for f in folds(table, set_name, "future", release=RELEASE) if f.group == group)
        assert set(block["model"]) == set(fold.test[MODEL])
        assert len(block) == int(fold.test[list(SETS[set_name])].notna().to_numpy().sum())
    row = c[c["model"] == "qwen-72b-4"].iloc[0]
    assert row["n_observed"] == 1 and row["distance"] == pytest.approx(np.log10(72 / 0.5))
    assert row["release"] == "2024-06"  # the release dates the protocol used
    # n per group in the calibrated reference matches the group's own cells
    n_ref = res.reference.groupby(["set", "group"])["n"].first()
    assert (n_ref == c.groupby(["set", "group"]).size()).all()
    md = summary_markdown(res)
    assert md.startswith("# Backtest: future (cut-off 2024-01)")


# -- the pipeline with a stand-in model ----------------------------------------------------------
def test_fits_are_shared_between_sets_and_cells_are_complete():
    table = synthetic_table()
    res = run_backtest(table, sets=("v1", "v2", "all"), model_factory=oracle, baselines=False,
                       verbose=False)
    # bloom, olmo, falcon (v1, all) and falcon + falcon-instruct (v2): four distinct tables
    assert len(res.fits) == 4
    assert sorted(res.fits["sets"]) == sorted(["v1,v2,all", "v1,v2,all", "v1,all", "v2"])
    c = res.cells
    assert list(pd.unique(c["set"])) == ["v1", "v2", "all"]
    for (set_name, group), block in c.groupby(["set", "group"]):
        fold = next(f for f in folds(table, set_name) if f.group == group)
        benches = [b for b in SETS[set_name]]
        expect = int(fold.test[benches].notna().to_numpy().sum())
        assert len(block) == expect
        assert set(block["benchmark"]) <= set(benches)
    assert c[["truth", "median", "pit", "crps", "lower_90", "upper_90"]].notna().all().all()
    # distance: log10(size / largest training size of the sub-family)
    row = c[(c["model"] == "bloom-176b-4")].iloc[0]
    assert row["distance"] == pytest.approx(np.log10(176.0 / 0.56))
    assert {"pooled", "group mean", "benchmark", "group", "distance"} == set(res.summary["level"])


def test_calibrated_stand_in_scores_calibrated_and_overconfident_fails():
    tables = [synthetic_table(seed) for seed in range(4)]
    groups = {"all": ("bloom", "falcon", "falcon-instruct", "llama", "llama-chat", "qwen")}

    def pooled(factory):
        cells = pd.concat(
            [run_backtest(t, sets=("all",), groups=groups, protocol="zero-shot", model_factory=factory,
                          seed=i, baselines=False, verbose=False).cells for i, t in enumerate(tables)]
        )
        return cells, (cells["truth"].between(cells["lower_90"], cells["upper_90"])).mean()

    cells, cov = pooled(oracle)
    assert len(cells) > 800
    assert cov == pytest.approx(0.9, abs=0.04)
    counts = np.histogram(cells["pit"], bins=5, range=(0, 1))[0]
    assert counts.min() > 0.7 * counts.mean()
    _, cov = pooled(overconfident)
    assert cov < 0.75


def test_fit_diagnostics_ignore_sign_free_sites():
    """A folded loading's unfolded site may sit at +x in one chain and -x in another (the
    same fit): the fold's R-hat must not read it; a real disagreement still shows."""
    from types import SimpleNamespace

    from sloth_bayes.backtest import _fit_diagnostics

    rng = np.random.default_rng(0)
    mixed = rng.normal(size=(2, 300))
    signs = np.array([1.0, -1.0])[:, None] * (1.0 + 0.05 * rng.normal(size=(2, 300)))

    def tree(slopes):
        post = xr.Dataset(
            {"slopes": (("chain", "draw"), slopes), "loadings_unfolded": (("chain", "draw"), signs)},
            coords={"chain": [0, 1], "draw": np.arange(300)},
        )
        stats = xr.Dataset({"diverging": (("chain", "draw"), np.zeros((2, 300), bool))})
        return SimpleNamespace(idata_=xr.DataTree.from_dict({"posterior": post, "sample_stats": stats}))

    assert _fit_diagnostics(tree(mixed))["rhat_max"] < 1.05
    assert _fit_diagnostics(tree(mixed + np.array([0.0, 3.0])[:, None]))["rhat_max"] > 1.5


def test_baselines_and_outputs(tmp_path, capsys):
    table = synthetic_table()
    res = run_backtest(table, sets="v1,v2", model_factory=oracle, verbose=False)
    assert res.cells[["pred_point_skills", "pred_flops_sigmoid"]].notna().all().all()
    pooled = res.summary[res.summary["level"] == "pooled"]
    assert {"mae_point_skills_points", "mae_flops_sigmoid_points"} <= set(pooled.columns)
    assert (pooled["mae_flops_sigmoid_points"] < 10).all()  # the data are a sigmoid in size
    written = write_backtest(res, tmp_path / "out")
    names = {p.name for p in written}
    assert {"cells.csv", "summary.csv", "fits.csv", "summary.md"} <= names
    back = pd.read_csv(tmp_path / "out" / "cells.csv")
    assert len(back) == len(res.cells)
    md = (tmp_path / "out" / "summary.md").read_text()
    assert "## Set v1" in md and "## Set v2" in md and "| pooled |" in md
    assert md == summary_markdown(res)
    # the calibrated reference: one row per set, group and replicate, n = the group's cells
    ref = pd.read_csv(tmp_path / "out" / "reference.csv")
    n_cells = res.cells.groupby(["set", "group"]).size()
    assert (ref.groupby(["set", "group"])["n"].first() == n_cells).all()
    assert (ref.groupby(["set", "group"]).size() == ref["replicate"].nunique()).all()
    assert (ref["hits_50"] <= ref["hits_90"]).all() and (ref["hits_90"] <= ref["n"]).all()
    assert md.count("calibrated by construction") == 2
    # over/under-estimation: the signal's scores, the guidance table, the reliability figure
    assert {"signal.csv", "guidance.csv", "reliability.png"} <= names
    assert "Does `p_overestimate` tell the direction?" in md and "### By distance" in md
    signal = pd.read_csv(tmp_path / "out" / "signal.csv")
    assert list(signal["set"]) == ["all sets", "v1", "v2"] and signal["auc"].between(0, 1).all()
    assert (res.cells["protocol"] == "lofo-1").all() and res.cells["n_observed"].eq(1).all()
    pooled = res.summary[res.summary["level"] == "pooled"]
    assert {"mae_point_points", "over_rate_point", "p_over_auc", "p_over_ece"} <= set(pooled.columns)


def test_parallel_jobs_give_the_same_cells():
    table = synthetic_table()
    one = run_backtest(table, sets=("v2",), model_factory=oracle, baselines=False, verbose=False)
    two = run_backtest(table, sets=("v2",), model_factory=oracle, baselines=False, verbose=False, jobs=2)
    key = ["set", "group", "model", "benchmark"]
    a, b = (r.cells.sort_values(key).reset_index(drop=True) for r in (one, two))
    pd.testing.assert_frame_equal(a, b)
    with pytest.raises(TypeError, match="picklable"):
        run_backtest(table, sets=("v2",), model_factory=lambda: OracleModel(), jobs=2, verbose=False)


# -- the compiled fold path (one compilation for every fold) ---------------------------------------
def tiny_model():
    """A real SlothBayes at tiny settings (module level: picklable for jobs > 1)."""
    from sloth_bayes import SlothBayes

    return SlothBayes(1, chains=2, warmup=50, draws=50, svi_steps=100, svi_restarts=2)


TINY_RUN = dict(sets=("v2",), groups=("olmo", "bloom"), model_factory=tiny_model, baselines=False,
                verbose=False, seed=0)


def _tiny_folds(table):
    """This process's compiled fold fitter of ``table`` at the tiny settings (the table and
    the settings are the key of the cache that ``run_backtest`` uses too)."""
    from sloth_bayes.backtest import compiled_folds

    probe = tiny_model()
    return compiled_folds(table.reset_index(drop=True), probe.config, probe.sampler)


@pytest.fixture(scope="module")
def compiled_run():
    """A compiled backtest of two folds, compiled from scratch (the other tests reuse it)."""
    from sloth_bayes import backtest

    backtest._COMPILED.clear()
    table = synthetic_table()
    return table, run_backtest(table, **TINY_RUN)


def test_compiled_path_refuses_custom_models():
    with pytest.raises(TypeError, match="SlothBayes"):
        run_backtest(synthetic_table(), sets=("v2",), model_factory=oracle, compiled=True, verbose=False)


def test_compiled_folds_share_one_compilation_and_repeat_exactly(compiled_run):
    table, res = compiled_run
    assert res.settings["compiled"] and res.fits["compiled"].all()
    assert set(res.fits["groups"]) == {"olmo", "bloom"}
    fitter = _tiny_folds(table).fitter
    # two folds, one build of each kernel; only the first fold pays for it
    assert fitter.compilations == {"svi": 1, "chain": 1}
    comp = res.fits["compile_seconds"].to_numpy()
    assert (comp > 0).sum() == 1 and (comp == 0).sum() == 1
    assert (res.fits["nuts_seconds"] > 0).all() and (res.fits["chain_method"] == "sequential").all()
    assert res.fits["divergences"].notna().all() and res.fits["lp_chain_spread"].notna().all()
    c = res.cells
    assert c[["truth", "median", "lower_90", "upper_90", "pit", "crps"]].notna().all().all()
    assert (c["lower_90"] <= c["median"]).all() and (c["median"] <= c["upper_90"]).all()
    # the same seed again: identical cells, and the first run's compilation is reused
    again = run_backtest(table, **TINY_RUN)
    pd.testing.assert_frame_equal(res.cells, again.cells)
    assert fitter.compilations == {"svi": 1, "chain": 1}
    assert (again.fits["compile_seconds"] == 0).all()


def test_compiled_cells_have_the_per_fold_layout(compiled_run):
    """The compiled path scores the same cells with the same columns as the per-fold path
    (which the stand-in model takes: no sampling)."""
    table, new = compiled_run
    old = run_backtest(table, **{**TINY_RUN, "model_factory": oracle})
    assert not old.settings["compiled"] and not old.fits["compiled"].any()
    assert list(new.cells.columns) == list(old.cells.columns)
    assert list(new.fits.columns) == list(old.fits.columns)
    # lofo-1: every test model's sub-family keeps a training model, as the stand-in assumes
    key = ["set", "group", "model", "benchmark", "truth", "family_kind", "distance"]
    pd.testing.assert_frame_equal(new.cells[key], old.cells[key])


def test_masked_fold_ignores_held_out_cells(compiled_run):
    """Held-out cells are out of the likelihood: changing their scores leaves the posterior
    identical (same seed); changing a training score does not. The fold's fit is that of
    its training table: held-out LLMs and (zero-shot) families are not in it."""
    table, _ = compiled_run
    fc = _tiny_folds(table)
    fold = next(f for f in folds(table, "v2", "zero-shot") if f.group == "bloom")
    train = fold.train[MODEL].astype(str)
    mask = fc.mask(train)
    assert 0 < mask.sum() < len(mask)
    y = np.asarray(fc.design.data.y, float)
    inner = (y > 0) & (y < 1)
    y_test = y.copy()
    y_test[~mask & inner] = 1.0 - y[~mask & inner]  # the held-out truths, changed
    y_train = y.copy()
    j = np.flatnonzero(mask & inner)[0]
    y_train[j] = 1.0 - y[j]
    base = fc.fit(train, seed=1)
    same = fc.fit(train, seed=1, y=y_test)
    other = fc.fit(train, seed=1, y=y_train)
    post = base.idata_["posterior"]
    for name in post.data_vars:
        np.testing.assert_array_equal(post[name].to_numpy(), same.idata_["posterior"][name].to_numpy())
    assert not np.array_equal(
        post["difficulty"].to_numpy(), other.idata_["posterior"]["difficulty"].to_numpy()
    )
    assert fc.fitter.compilations == {"svi": 1, "chain": 1}  # a zero-shot mask: no new build
    # a fit of the training table: its LLMs and families only, its cells only
    assert list(base.idata_["constant_data"]["llm_family"].coords["llm"].values) == list(train)
    assert "bloom" not in set(post["alpha"].coords["family"].values)
    assert "bloom" not in set(post["alpha_coarse"].coords["coarse_family"].values)
    for dim, values in post.coords.items():  # any per-family term (benchmark profiles...)
        assert not {"bloom"} & {str(v) for v in values.values}, dim
    assert base.idata_["observed_data"]["y"].size == mask.sum() == base.fit_info_["cells_in_likelihood"]
    stats = base.idata_["sample_stats"]
    assert {"diverging", "lp", "n_steps", "reached_max_tree_depth"} <= set(stats.data_vars)
    np.testing.assert_array_equal(stats["reached_max_tree_depth"], stats["tree_depth"] >= fc.sampler.max_tree_depth)
    with pytest.warns(UserWarning, match="never seen"):
        forecast = base.forecast(fold.test)
    assert set(forecast["family_kind"]) == {"new family"}
    assert forecast[["median", "lower_90", "upper_90"]].notna().all().all()


@pytest.mark.slow
def test_compiled_folds_agree_with_per_fold_fits():
    """The same cells as fresh SlothBayes fits per fold, and close forecasts (same model and
    data; tiny samplers, so only loosely)."""
    table = synthetic_table()
    new = run_backtest(table, **TINY_RUN)
    old = run_backtest(table, compiled=False, **TINY_RUN)
    assert list(new.cells.columns) == list(old.cells.columns)
    key = ["set", "group", "model", "benchmark", "truth", "family_kind", "distance"]
    pd.testing.assert_frame_equal(new.cells[key], old.cells[key])
    assert (new.cells["median"] - old.cells["median"]).abs().mean() < 0.05


@pytest.mark.slow
def test_compiled_folds_in_parallel_workers():
    """jobs=2: each worker compiles once; the cells are those of one process."""
    table = synthetic_table()
    kw = {**TINY_RUN, "groups": None}
    one = run_backtest(table, **kw)
    two = run_backtest(table, jobs=2, **kw)
    key = ["set", "group", "model", "benchmark"]
    a, b = (r.cells.sort_values(key).reset_index(drop=True) for r in (one, two))
    pd.testing.assert_frame_equal(a, b)
    assert (two.fits["compile_seconds"] > 0).sum() == min(2, len(two.fits))


# -- the real sampler, small -----------------------------------------------------------------------
def test_end_to_end_cli_on_simulated_table(simulated, tmp_path):
    """One real fit (2 chains, 100 draws) through the command line."""
    from sloth_bayes.cli import main

    table, _ = simulated
    table = table.copy()
    # rename the family with the most base models to a real group name ("olmo")
    base = table[~table[INSTRUCT].astype(bool)]
    fam = base[SUBFAMILY].value_counts().index[0]
    table[SUBFAMILY] = table[SUBFAMILY].replace({fam: "olmo"})
    table.loc[table[SUBFAMILY] == "olmo", FAMILY] = "olmo"
    path = tmp_path / "sim.csv"
    table.to_csv(path, index=False)
    out = tmp_path / "bt"
    t0 = time.perf_counter()
    rc = main(
        ["backtest", str(path), "--set", "v1", "--groups", "olmo", "--out", str(out), "--skills", "2",
         "--chains", "2", "--warmup", "100", "--draws", "100", "--svi-steps", "300",
         "--svi-restarts", "2", "--quiet", "--option", "deviation_knee=0.5"]
    )
    assert rc == 0
    print(f"end-to-end backtest: {time.perf_counter() - t0:.0f} s")
    cells = pd.read_csv(out / "cells.csv")
    n_test = (table[SUBFAMILY] == "olmo").sum() - 1
    assert cells["model"].nunique() == n_test
    assert cells["group"].unique().tolist() == ["olmo"]
    assert cells[["median", "lower_90", "upper_90", "pit", "crps"]].notna().all().all()
    assert (cells["lower_90"] <= cells["median"]).all() and (cells["median"] <= cells["upper_90"]).all()
    assert cells["pit"].between(0, 1).all()
    summary = pd.read_csv(out / "summary.csv")
    pooled = summary[summary["level"] == "pooled"].iloc[0]
    assert pooled["n"] == len(cells)
    assert np.isfinite(pooled[["mae_points", "coverage_90", "crps_points"]].astype(float)).all()
    fits = pd.read_csv(out / "fits.csv")
    assert len(fits) == 1 and fits["nuts_seconds"].iloc[0] > 0


@pytest.mark.slow
def test_real_lofo1_v2(real_table, tmp_path):
    """LOFO-1 on the v2 set of the real table (8 fits at reduced draws)."""
    from functools import partial

    from sloth_bayes import SlothBayes

    quick = dict(chains=2, warmup=150, draws=150, svi_steps=400, svi_restarts=2)
    jobs = int(os.environ.get("SLOTH_BAYES_JOBS", "1"))
    res = run_backtest(real_table, sets=("v2",), model_factory=partial(SlothBayes, 2, **quick), jobs=jobs)
    write_backtest(res, tmp_path)
    assert res.cells["group"].nunique() == 8
    assert len(res.cells) == 144
    pooled = res.summary[res.summary["level"] == "pooled"].iloc[0]
    print(res.summary[res.summary["level"].isin(["pooled", "group mean"])].T)
    print(res.fits[["groups", "seconds", "divergences", "rhat_max"]])
    assert pooled["mae_points"] < 10
    assert 0.5 < pooled["coverage_90"] <= 1.0
