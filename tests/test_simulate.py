"""The simulator: leaderboard-shaped tables drawn from the model's own prior."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from sloth_bayes.data import META_COLUMNS, TOKENS, validate_table
from sloth_bayes.model import ModelConfig
from sloth_bayes.simulate import main, simulate_table, synthetic_design

BENCH = ["MMLU", "GSM8K", "ARC", "MATH Lvl 5"]


@pytest.fixture(scope="module")
def sim():
    return simulate_table(config=ModelConfig(n_skills=2), benchmarks=BENCH, seed=5, n_families=4)


def test_table_shape_and_values(sim):
    table, _ = sim
    assert list(table.columns) == list(META_COLUMNS) + BENCH
    scores = table[BENCH].to_numpy()
    observed = np.isfinite(scores)
    assert ((scores[observed] >= 0) & (scores[observed] <= 1)).all()
    assert not observed.all(), "some cells are missing"
    assert observed.any(axis=1).all(), "every LLM keeps an observed score"
    assert table[TOKENS].isna().any() and table[TOKENS].notna().any()
    assert table["Instruct"].any() and (~table["Instruct"]).any()
    assert table["#Params (B)"].between(0.1, 100).all()
    assert table["Model"].is_unique
    # sub-families nest in coarse families
    assert (table.groupby("Family2")["Family"].nunique() == 1).all()
    validate_table(table, BENCH)  # a valid training table


def test_truth_is_shaped_like_the_posterior(sim):
    table, truth = sim
    n_sub, n_coarse = table["Family2"].nunique(), table["Family"].nunique()
    assert truth["slopes"].shape == (3, 2)
    assert truth["alpha"].shape == (n_sub, 2)
    assert truth["alpha_coarse"].shape == (n_coarse, 2)
    assert truth["loadings"].shape == (len(BENCH), 2)
    assert truth["difficulty"].shape == (len(BENCH),)
    assert truth["tokens_latent"].shape == (int(table[TOKENS].isna().sum()),)
    assert "y" not in truth
    # pure anchors (the default): MMLU loads 1 on skill 1 and 0 on skill 2, GSM8K 0 and 1
    np.testing.assert_allclose(truth["loadings"][0], [1.0, 0.0])
    np.testing.assert_allclose(truth["loadings"][1], [0.0, 1.0])
    assert (truth["sigma_bench"] > 0).all()
    # the other loadings are drawn from their (signed) prior
    free = np.ones((len(BENCH), 2), bool)
    free[:2] = False
    assert np.isfinite(truth["loadings"][free]).all() and (truth["loadings"][free] != 0).all()


def test_template_design_is_kept(sim):
    template, _ = sim
    template = template.copy()
    template.loc[0, "ARC"] = np.nan  # a new hole: must be copied
    table, truth = simulate_table(template, ModelConfig(n_skills=1), seed=1)
    pd.testing.assert_frame_equal(table[list(META_COLUMNS)], template[list(META_COLUMNS)])
    assert (table[BENCH].isna().to_numpy() == template[BENCH].isna().to_numpy()).all()
    assert not np.allclose(table[BENCH].fillna(0).to_numpy(), template[BENCH].fillna(0).to_numpy())
    assert truth["loadings"].shape == (len(BENCH), 1)


def test_seeds_and_fixed_parameters():
    kw = dict(config=ModelConfig(n_skills=1), benchmarks=BENCH, n_families=2)
    a, ta = simulate_table(seed=11, **kw)
    b, _ = simulate_table(seed=11, **kw)
    pd.testing.assert_frame_equal(a, b)
    slopes = np.array([[1.5], [0.5], [0.0]])
    c, tc = simulate_table(seed=11, params={"slopes": slopes}, **kw)
    np.testing.assert_allclose(tc["slopes"], slopes)
    assert not np.allclose(ta["slopes"], slopes)


def test_synthetic_design():
    design = synthetic_design(6, benchmarks=BENCH, seed=2, missing_cells=0.3)
    assert design["Family"].nunique() == 6
    assert {"-instruct"} <= {s[s.rfind("-") :] for s in design["Family2"]}
    observed = design[BENCH].notna()
    assert observed.any(axis=1).all() and (observed.sum() >= 2).all()
    assert 0.1 < 1 - observed.to_numpy().mean() < 0.5


def test_main_writes_demo_files(tmp_path):
    assert main(["--out-dir", str(tmp_path), "--families", "2", "--skills", "1"]) == 0
    table = pd.read_csv(tmp_path / "simulated_leaderboard.csv")
    record = json.loads((tmp_path / "simulated_parameters.json").read_text())
    assert len(table.columns) == len(META_COLUMNS) + 12
    assert record["seed"] == 0 and record["config"]["n_skills"] == 1
    slopes = record["parameters"]["slopes"]
    assert slopes["dims"] == ["covariate", "skill"] and np.shape(slopes["values"]) == (3, 1)
    assert record["coords"]["family"] == list(pd.unique(table["Family2"]))
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temporary file


def test_a_design_reads_its_simulated_scores_as_exact():
    """``prepare_design`` puts placeholders (0.5) in the observed cells: on the 0.01 grid, but
    not a rounding of the scores it simulates, so its likelihood reads them as exact; the
    design of a real table keeps the steps of its rounded columns."""
    from sloth_bayes.simulate import encode_table, prepare_design

    table, _ = simulate_table(synthetic_design(seed=0), ModelConfig(n_skills=1), seed=1)
    bench = [c for c in table.columns if c not in META_COLUMNS]
    table[bench[0]] = table[bench[0]].round(2)
    assert np.all(prepare_design(table).data.step == 0)
    steps = encode_table(table).encoding.score_step
    assert steps[0] == 0.01 and steps[1:] == [0.0] * (len(bench) - 1)
