"""Benchmark metadata (the shipped table, resolving floors / item counts), and the
performance scripts of ``benchmarks/``."""

import math
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from sloth_bayes.benchmarks import (
    DEFAULT_BENCHMARKS,
    V1_BENCHMARKS,
    V2_BENCHMARKS,
    benchmark_table,
    resolve_benchmarks,
)
from sloth_bayes.data import DataError

# Chance-level floors as documented with the Sloth data (shared/data/README.md).
FLOORS = {
    "MMLU": 0.25, "ARC": 0.25, "HellaSwag": 0.25, "Winogrande": 0.5, "TruthfulQA": 0.31,
    "GSM8K": 0.0, "IFEval": 0.0, "BBH": 0.255, "MATH Lvl 5": 0.0, "GPQA": 0.25,
    "MUSR": 0.345, "MMLU-PRO": 0.1,
}  # fmt: skip
N_ITEMS = {
    "MMLU": 14042, "ARC": 1172, "HellaSwag": 10042, "Winogrande": 1267, "TruthfulQA": 817,
    "GSM8K": 1319, "IFEval": 541, "BBH": 5761, "MATH Lvl 5": 1324, "GPQA": 1192,
    "MUSR": 756, "MMLU-PRO": 12032,
}  # fmt: skip


def test_benchmark_lists():
    assert V1_BENCHMARKS == ("MMLU", "ARC", "HellaSwag", "Winogrande", "TruthfulQA", "GSM8K")
    assert V2_BENCHMARKS == ("IFEval", "BBH", "MATH Lvl 5", "GPQA", "MUSR", "MMLU-PRO")
    assert DEFAULT_BENCHMARKS == V1_BENCHMARKS + V2_BENCHMARKS


def test_table_contents():
    table = benchmark_table()
    assert list(table.index) == list(DEFAULT_BENCHMARKS)
    assert list(table.columns) == ["floor", "n_items", "leaderboard", "answer", "source"]
    # free-form answers that must match have nothing to guess: their floor is exact
    assert sorted(table.index[table["answer"] == "exact"]) == ["GSM8K", "MATH Lvl 5"]
    assert set(table["answer"]) == {"choice", "exact", "rules"}
    assert table["floor"].to_dict() == FLOORS
    assert table["n_items"].to_dict() == N_ITEMS
    assert set(table.loc[list(V1_BENCHMARKS), "leaderboard"]) == {"v1"}
    assert set(table.loc[list(V2_BENCHMARKS), "leaderboard"]) == {"v2"}
    assert table["source"].str.len().min() > 10


def test_table_is_a_copy():
    table = benchmark_table()
    table.loc["MMLU", "floor"] = 0.9
    assert benchmark_table().loc["MMLU", "floor"] == 0.25


def test_resolve_keeps_order_and_types():
    names = ["GSM8K", "MMLU", "BBH"]
    meta = resolve_benchmarks(names)
    assert list(meta.index) == names
    assert list(meta.columns) == ["floor", "n_items", "leaderboard", "answer"]
    assert meta["floor"].dtype == float and meta["n_items"].dtype == float
    assert meta["floor"].tolist() == [0.0, 0.25, 0.255]


def test_resolve_overrides_and_adds():
    meta = resolve_benchmarks(
        ["MMLU", "MyQA"], floors={"MMLU": 0.2, "MyQA": 0.5, "Unused": 0.1}, n_items={"MMLU": 100}
    )
    assert meta.loc["MMLU", "floor"] == 0.2
    assert meta.loc["MMLU", "n_items"] == 100.0
    assert meta.loc["MyQA", "floor"] == 0.5
    assert math.isnan(meta.loc["MyQA", "n_items"])
    assert meta.loc["MyQA", "leaderboard"] == "user"
    assert meta.loc["MyQA", "answer"] == "unknown"
    assert "Unused" not in meta.index


def test_unknown_benchmark_without_floor():
    with pytest.raises(DataError) as info:
        resolve_benchmarks(["MMLU", "MyQA", "OtherQA"])
    msg = str(info.value)
    assert "MyQA" in msg and "OtherQA" in msg
    assert "floors={'MyQA': 0.25}" in msg
    assert "--floor 'MyQA=0.25'" in msg


@pytest.mark.parametrize("floor", [1.0, -0.1, float("nan"), "0.2", True])
def test_bad_floor(floor):
    with pytest.raises(DataError, match="MyQA"):
        resolve_benchmarks(["MyQA"], floors={"MyQA": floor})


@pytest.mark.parametrize("count", [0, -5, float("inf")])
def test_bad_n_items(count):
    with pytest.raises(DataError, match="MMLU"):
        resolve_benchmarks(["MMLU"], n_items={"MMLU": count})


def test_repeated_benchmark():
    with pytest.raises(DataError, match="GSM8K"):
        resolve_benchmarks(["GSM8K", "MMLU", "GSM8K"])


def test_index_is_named():
    assert resolve_benchmarks(["ARC"]).index.name == "benchmark"
    assert isinstance(resolve_benchmarks([]), pd.DataFrame)


# -- the performance scripts (benchmarks/) -----------------------------------------------------
SCRIPTS = Path(__file__).resolve().parent.parent / "benchmarks"


def test_only_performance_benchmarks():
    assert sorted(p.name for p in SCRIPTS.glob("*.py")) == [
        "backtest_speed.py", "fit_speed.py", "forecast_speed.py"]


@pytest.mark.parametrize("script", ["backtest_speed.py", "fit_speed.py", "forecast_speed.py"])
def test_benchmark_script_help(script):
    run = subprocess.run([sys.executable, str(SCRIPTS / script), "--help"], capture_output=True,
                         text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stderr
    assert "usage:" in run.stdout


def test_forecast_speed_prints_a_table(sim_fit, tmp_path, capsys):
    import importlib.util

    spec = importlib.util.spec_from_file_location("forecast_speed", SCRIPTS / "forecast_speed.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    path = sim_fit.save(tmp_path / "fit.nc")
    # the simulated fit knows other benchmarks than the embedded table: forecast its own LLMs
    from sloth_bayes.datasets import load_leaderboard

    assert len(module._queries(load_leaderboard(), 5)) == 5
    assert module.main(["--fit", str(path), "--queries", "1,4", "--repeat", "1"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].split() == ["queries", "benchmarks", "draws", "seconds", "ms_per_query"]
    assert len(lines) == 3
