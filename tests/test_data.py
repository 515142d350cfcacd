"""Validation of training and query tables: every bad input gets a clear DataError."""

import os

import numpy as np
import pandas as pd
import pytest

from sloth_bayes.benchmarks import DEFAULT_BENCHMARKS
from sloth_bayes.data import (
    INSTRUCT,
    META_COLUMNS,
    MODEL,
    SIZE,
    SUBFAMILY,
    TOKENS,
    DataError,
    read_table,
    rounding_step,
    score_columns,
    validate_queries,
    validate_table,
)
from sloth_bayes.utils import format_rows


def make_table() -> pd.DataFrame:
    """Four LLMs, two families, two benchmarks (one cell missing) and extra columns."""
    return pd.DataFrame(
        {
            "Model": ["alpha-1b", "alpha-7b", "alpha-7b-chat", "beta-3b"],
            "Family": ["alpha", "alpha", "alpha", "beta"],
            "Instruct": [False, False, True, False],
            "#Params (B)": [1.0, 7.0, 7.0, 3.0],
            "Pretraining Data Size (T)": [1.0, 2.0, 2.0, np.nan],
            "GSM8K": [0.02, 0.15, 0.3, 0.1],
            "MMLU": [0.26, 0.45, np.nan, 0.4],
            "notes": ["a", "b", "c", "d"],
            "bbh_navigate": [0.5, 0.6, 0.6, 0.5],
            "Family2": ["alpha", "alpha", "alpha-chat", "beta"],
        }
    )


def expect_error(df, *parts, **kwargs):
    """Validate ``df``, expecting a DataError whose message contains every part."""
    with pytest.raises(DataError) as info:
        validate_table(df, **kwargs)
    for part in parts:
        assert part in str(info.value), f"{part!r} not in: {info.value}"
    return str(info.value)


# --- valid input -------------------------------------------------------------------


def test_valid_table_values_unchanged():
    df = make_table()
    original = df.copy()
    clean, meta = validate_table(df)
    benchmarks = ["MMLU", "GSM8K"]  # DEFAULT_BENCHMARKS order, not column order
    assert list(clean.columns) == list(META_COLUMNS) + benchmarks
    pd.testing.assert_frame_equal(clean, df[list(META_COLUMNS) + benchmarks])
    pd.testing.assert_frame_equal(df, original)  # input untouched
    assert list(meta.index) == benchmarks
    assert meta.loc["MMLU", "floor"] == 0.25


def test_types_normalised_values_kept():
    df = make_table()
    df[INSTRUCT] = ["FALSE", "false", " True ", "0"]
    df[SIZE] = [1, 7, 7, 3]  # ints
    clean, _ = validate_table(df)
    assert clean[INSTRUCT].tolist() == [False, False, True, False]
    assert clean[SIZE].dtype == float and clean[SIZE].tolist() == [1.0, 7.0, 7.0, 3.0]
    df[INSTRUCT] = [0, 0, 1, 0]
    assert validate_table(df)[0][INSTRUCT].tolist() == [False, False, True, False]


def test_benchmark_subset_order_and_index_kept():
    df = make_table().set_index(pd.Index([10, 11, 12, 13]))
    clean, meta = validate_table(df, ["GSM8K"])
    assert list(clean.columns[-1:]) == ["GSM8K"] and list(meta.index) == ["GSM8K"]
    assert list(clean.index) == [10, 11, 12, 13]


def test_tokens_optional():
    df = make_table().drop(columns=TOKENS)
    clean, _ = validate_table(df)
    assert clean[TOKENS].isna().all()
    assert list(clean.columns[: len(META_COLUMNS)]) == list(META_COLUMNS)


def test_score_columns():
    df = make_table()
    assert score_columns(df) == ["MMLU", "GSM8K"]
    assert score_columns(df.drop(columns=["MMLU", "GSM8K"])) == []


# --- bad input: one test each ------------------------------------------------------


def test_percent_scores():
    df = make_table()
    df["MMLU"] = df["MMLU"] * 100
    expect_error(df, "'MMLU'", "looks like percent", "divide by 100", "alpha-1b")


def test_scores_outside_unit_interval():
    df = make_table()
    df.loc[1, "GSM8K"] = -0.1
    expect_error(df, "'GSM8K'", "outside [0, 1]", "alpha-7b")


def test_scores_above_100_are_not_percent():
    df = make_table()
    df.loc[3, "MMLU"] = 140.0
    msg = expect_error(df, "'MMLU'", "outside [0, 1]", "beta-3b")
    assert "percent" not in msg


def test_non_numeric_scores():
    df = make_table()
    df["MMLU"] = df["MMLU"].astype(object)
    df.loc[2, "MMLU"] = "n/a"
    expect_error(df, "'MMLU'", "non-numeric", "alpha-7b-chat")


@pytest.mark.parametrize("value", [0.0, -7.0])
def test_non_positive_size(value):
    df = make_table()
    df.loc[1, SIZE] = value
    expect_error(df, f"'{SIZE}'", "positive", "alpha-7b")


def test_missing_size():
    df = make_table()
    df.loc[3, SIZE] = np.nan
    expect_error(df, f"'{SIZE}'", "missing", "beta-3b")


def test_non_positive_tokens():
    df = make_table()
    df.loc[0, TOKENS] = 0.0
    expect_error(df, f"'{TOKENS}'", "positive", "alpha-1b")


def test_duplicate_names():
    df = make_table()
    df.loc[3, MODEL] = "alpha-7b"
    msg = expect_error(df, f"'{MODEL}'", "duplicate", "alpha-7b")
    assert "beta-3b" not in msg


def test_empty_model_name():
    df = make_table()
    df.loc[2, MODEL] = np.nan
    expect_error(df, f"'{MODEL}'", "row 2")


def test_unknown_benchmark_without_floor():
    df = make_table().assign(MyQA=[0.3, 0.4, 0.5, 0.6])
    expect_error(df, "MyQA", "floors={'MyQA': 0.25}", "--floor", benchmarks=["MMLU", "MyQA"])


def test_unknown_benchmark_with_floor():
    df = make_table().assign(MyQA=[0.3, 0.4, 0.5, 0.6])
    clean, meta = validate_table(df, ["MMLU", "MyQA"], floors={"MyQA": 0.2})
    assert meta.loc["MyQA", "floor"] == 0.2
    assert clean["MyQA"].tolist() == df["MyQA"].tolist()


def test_requested_benchmark_absent():
    expect_error(make_table(), "BBH", "not in the table", benchmarks=["MMLU", "BBH"])


def test_empty_table():
    expect_error(make_table().iloc[:0], "empty")


@pytest.mark.parametrize("column", [MODEL, "Family", SIZE, INSTRUCT])
def test_missing_column(column):
    expect_error(make_table().drop(columns=column), f"'{column}'", "required")


def test_missing_family2_suggests_copying_family():
    expect_error(make_table().drop(columns=SUBFAMILY), f"'{SUBFAMILY}'", "df['Family2'] = df['Family']")


@pytest.mark.parametrize("value", ["yes", np.nan, 2])
def test_bad_instruct(value):
    df = make_table()
    df[INSTRUCT] = df[INSTRUCT].astype(object)
    df.loc[1, INSTRUCT] = value
    expect_error(df, f"'{INSTRUCT}'", "alpha-7b")


def test_no_observed_scores():
    df = make_table()
    df["MMLU"] = np.nan
    expect_error(df, "MMLU", "No observed scores", benchmarks=["MMLU"])


def test_no_benchmark_columns():
    expect_error(make_table().drop(columns=["MMLU", "GSM8K"]), "No benchmark columns", "benchmarks=")


# --- queries -----------------------------------------------------------------------


def test_queries_drop_scores():
    df = make_table().drop(columns=TOKENS)
    queries = validate_queries(df)
    assert list(queries.columns) == list(META_COLUMNS)
    assert queries[TOKENS].isna().all()
    pd.testing.assert_frame_equal(queries.drop(columns=TOKENS), df[list(META_COLUMNS[:-1])])


def test_queries_missing_family2():
    with pytest.raises(DataError, match="new name"):
        validate_queries(make_table().drop(columns=SUBFAMILY))


@pytest.mark.parametrize(
    "edit, part",
    [
        (lambda d: d.iloc[:0], "empty"),
        (lambda d: d.assign(Model=["a", "a", "b", "c"]), "duplicate"),
        (lambda d: d.assign(**{SIZE: [1.0, -1.0, 2.0, 3.0]}), "positive"),
    ],
)
def test_queries_bad(edit, part):
    with pytest.raises(DataError, match=part):
        validate_queries(edit(make_table()))


# --- files -------------------------------------------------------------------------


def test_read_table_roundtrip(tmp_path):
    path = tmp_path / "table.csv"
    make_table().to_csv(path, index=False)
    clean, meta = read_table(path, ["GSM8K"])
    assert clean["GSM8K"].tolist() == make_table()["GSM8K"].tolist()
    assert list(meta.index) == ["GSM8K"]


def test_read_table_missing_file(tmp_path):
    path = tmp_path / "nope.csv"
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        read_table(path)


def test_real_table():
    from sloth_bayes.datasets import embedded_leaderboard_path

    path = embedded_leaderboard_path()
    raw = pd.read_csv(path)
    clean, meta = read_table(path)
    assert len(clean) == 160
    assert list(meta.index) == list(DEFAULT_BENCHMARKS)
    pd.testing.assert_frame_equal(
        clean[list(DEFAULT_BENCHMARKS)], raw[list(DEFAULT_BENCHMARKS)].astype(float)
    )
    assert clean[TOKENS].isna().sum() == 13
    # the v2 columns are published in whole percents, the v1 ones exactly
    steps = {b: rounding_step(clean[b]) for b in DEFAULT_BENCHMARKS}
    assert {b for b, s in steps.items() if s == 0.01} == {"IFEval", "BBH", "MATH Lvl 5", "GPQA", "MUSR", "MMLU-PRO"}
    assert {b for b, s in steps.items() if s == 0.0} == {"MMLU", "ARC", "HellaSwag", "Winogrande", "TruthfulQA", "GSM8K"}


def test_rounding_step_is_the_coarsest_grid_every_score_sits_on():
    rng = np.random.default_rng(0)
    exact = rng.uniform(0.2, 0.8, 40)
    assert rounding_step(np.round(exact, 2)) == 0.01
    assert rounding_step(np.round(exact, 3)) == 0.001
    assert rounding_step(exact) == 0.0
    # missing cells are ignored, and too few scores leave the step in doubt
    assert rounding_step(pd.Series([0.25, np.nan, 0.31, 0.4, 0.12, 0.0])) == 0.01
    assert rounding_step([0.25, 0.31, 0.4]) == 0.0


def test_format_rows():
    assert format_rows(list("abcdefg"), limit=3) == "a, b, c, and 4 more"
    assert format_rows(["x"]) == "x"
