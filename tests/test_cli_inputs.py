"""The command line under bad input: every case runs through the real entry point
(``sloth_bayes.cli.main``, or ``python -m sloth_bayes`` where a real process matters),
exits with the documented status, prints no traceback, leaves every input file
byte-identical and never starts sampling.

Exit statuses: 0 success, 1 a negative verdict, 2 bad input or usage, 130 interrupted.
The sampler is replaced by a stub that records the call and raises KeyboardInterrupt: a
valid command therefore ends in 130 *after* all of its checks have passed, and a case
that should be refused fails the test if it reaches the sampler.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sloth_bayes.cli import PLUGINS, build_parser, main
from sloth_bayes.errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, EXIT_VERDICT
from sloth_bayes.utils import atomic_write, package_data_path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ["MMLU", "ARC", "GSM8K", "TruthfulQA"]


# --- fixtures -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def source() -> pd.DataFrame:
    """The simulated leaderboard shipped with the package, four benchmarks."""
    table = pd.read_csv(package_data_path("simulated_leaderboard.csv"))
    meta = ["Model", "Family", "Family2", "Instruct", "#Params (B)", "Pretraining Data Size (T)"]
    return table[meta + BENCH].copy()


class Sampler:
    """Stands in for every way of starting NUTS; records that it was reached."""

    def __init__(self):
        self.calls = 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        raise KeyboardInterrupt  # as if the user pressed Ctrl-C once sampling had begun


@pytest.fixture(autouse=True)
def sampler(monkeypatch) -> Sampler:
    import numpyro.infer

    import sloth_bayes.estimator

    stub = Sampler()
    monkeypatch.setattr(sloth_bayes.estimator, "run_nuts", stub)
    monkeypatch.setattr(numpyro.infer.MCMC, "run", stub)
    monkeypatch.setattr(numpyro.infer.MCMC, "warmup", stub)
    monkeypatch.setattr("sloth_bayes.cli._set_devices", lambda chains: None)  # JAX may have started
    return stub


@pytest.fixture
def work(tmp_path, source, monkeypatch):
    """A folder with a training table ``t.csv`` and queries ``q.csv``; commands run in it."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SLOTH_BAYES_DATA", raising=False)
    source.to_csv(tmp_path / "t.csv", index=False)
    queries = source[source["Family2"] == source["Family2"].iloc[0]].iloc[:2]
    queries.drop(columns=BENCH).to_csv(tmp_path / "q.csv", index=False)
    return tmp_path


def hashes(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def run(folder: Path, capsys, argv: list[str], expect: int, *, creates: tuple[str, ...] = ()):
    """Run ``sloth-bayes argv`` in-process; check the status, that no traceback was printed,
    and that no file changed or appeared except ``creates``. Returns (stdout, stderr)."""
    before = hashes(folder)
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert code == expect, f"exit {code}, expected {expect}\nstdout: {out}\nstderr: {err}"
    assert "Traceback" not in out + err, err
    after = hashes(folder)
    assert {k: v for k, v in after.items() if k not in creates} == before, "an input file changed"
    assert not [p for p in after if ".tmp" in p], "a temporary file was left behind"
    if expect == EXIT_USAGE:  # one line says what to fix (after any warnings)
        lines = err.splitlines()
        assert lines[-1].startswith("error: ") and sum(x.startswith("error") for x in lines) == 1, err
    return out, err


def write(folder: Path, name: str, table: pd.DataFrame) -> Path:
    table.to_csv(folder / name, index=False)
    return folder / name


def tiny_fit(path: Path, table: pd.DataFrame) -> Path:
    """A file that passes ``load_fit`` (format, configuration, encoding, posterior variables)
    without any sampling: enough for the checks a forecast makes before drawing."""
    import xarray as xr

    from sloth_bayes.data import training_summary, validate_table
    from sloth_bayes.inference import SamplerConfig
    from sloth_bayes.io import FORMAT, REQUIRED_VARS, save_fit
    from sloth_bayes.model import ModelConfig
    from sloth_bayes.overestimate import POINT_ATTR, fit_point_law

    clean, meta = validate_table(table)
    subs = list(pd.unique(clean["Family2"]))
    coarse = list(pd.unique(clean["Family"]))
    family_of = clean.groupby("Family2")["Family"].first()
    encoding = {"subfamilies": subs, "coarse": coarse, "benchmarks": list(meta.index),
                "sub_coarse": [coarse.index(family_of[s]) for s in subs]}
    post = xr.Dataset({v: (("chain", "draw"), np.zeros((1, 2))) for v in REQUIRED_VARS})
    tree = xr.DataTree.from_dict({"posterior": post})
    tree.attrs.update({
        "sloth_bayes_format": FORMAT,
        "sloth_bayes_config": json.dumps(ModelConfig(n_skills=1).to_dict()),
        "sloth_bayes_sampler": json.dumps(SamplerConfig().to_dict()),
        "sloth_bayes_encoding": json.dumps(encoding),
        "sloth_bayes_training": json.dumps(training_summary(clean)),
        POINT_ATTR: json.dumps(fit_point_law(clean, list(meta.index), floors=dict(meta["floor"]), n_skills=1).to_dict()),
        "seed": 0,
    })
    return save_fit(tree, path)


@pytest.fixture
def fitted(work, source, monkeypatch):
    """``fit.nc`` in the work folder; forecasting draws are replaced by a constant table."""
    import sloth_bayes.estimator

    tiny_fit(work / "fit.nc", source)

    def summarise(draws, queries, **kw):
        return pd.DataFrame({"model": np.repeat(queries["Model"].to_numpy(), len(BENCH)),
                             "benchmark": BENCH * len(queries), "median": 0.5})

    def draws(idata, queries, seed=0, **kw):
        import xarray as xr

        return xr.Dataset(coords={"model": queries["Model"].astype(str).to_numpy(), "benchmark": BENCH})

    monkeypatch.setattr(sloth_bayes.estimator, "predictive_draws", draws)
    monkeypatch.setattr(sloth_bayes.estimator, "summarise", summarise)
    return work / "fit.nc"


# --- what already worked, and keeps working ---------------------------------------------------------
def test_help_and_version(capsys):
    assert main(["--help"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "exit status" in out and "130" in out and "bad input" in out
    for name in ["fit", "forecast", "demo", "data", *[c for cs in PLUGINS.values() for c in cs]]:
        assert name in out
    assert main(["--version"]) == EXIT_OK
    assert capsys.readouterr().out.startswith("sloth-bayes ")
    assert main(["fit", "--help"]) == EXIT_OK
    assert "--out" in capsys.readouterr().out


def test_usage_errors_exit_2(capsys):
    assert main([]) == EXIT_USAGE
    assert main(["frobnicate"]) == EXIT_USAGE
    assert main(["fit", "t.csv"]) == EXIT_USAGE  # --out is required
    assert main(["fit", "t.csv", "--out", "x.nc", "--chains", "many"]) == EXIT_USAGE
    assert "Traceback" not in capsys.readouterr().err


def test_listed_commands_are_the_registered_ones():
    """``--help`` lists plugin commands without importing them: the list must stay true."""
    registered = {name: p for name, p in build_parser("*")._subparsers._group_actions[0].choices.items()}
    listed = {c for cs in PLUGINS.values() for c in cs}
    assert listed <= set(registered) and set(registered) - listed == {"fit", "forecast", "demo", "data"}


def test_forecast_from_a_saved_fit(fitted, capsys):
    out, err = run(fitted.parent, capsys, ["forecast", "fit.nc", "q.csv", "--out", "fc.csv"], EXIT_OK,
                   creates=("fc.csv",))
    assert "8 forecasts -> fc.csv" in out and err == ""
    assert len(pd.read_csv(fitted.parent / "fc.csv")) == 8


def test_a_valid_fit_passes_every_check_then_samples(work, capsys, sampler):
    """A good table reaches the sampler; Ctrl-C there is status 130 and no file is written."""
    out, err = run(work, capsys, ["fit", "t.csv", "--out", "fit.nc", "--skills", "2", "--quiet"],
                   EXIT_INTERRUPTED)
    assert sampler.calls == 1 and err == "interrupted\n"


def test_a_missing_file_and_a_foreign_fit(work, capsys, sampler):
    run(work, capsys, ["fit", "nope.csv", "--out", "fit.nc"], EXIT_USAGE)
    (work / "fake.nc").write_bytes(b"not a netcdf file")
    _, err = run(work, capsys, ["forecast", "fake.nc", "q.csv", "--out", "fc.csv"], EXIT_USAGE)
    assert "not a readable netCDF" in err
    run(work, capsys, ["diagnose", "fake.nc"], EXIT_USAGE)
    assert sampler.calls == 0


# --- outputs: never an input, checked before any work ------------------------------------------------
@pytest.mark.parametrize(
    "argv, part",
    [
        (["fit", "t.csv", "--out", "t.csv"], "same file as the input DATA"),
        (["fit", "t.csv", "--out", "./sub/../t.csv"], "same file as the input DATA"),
        (["fit", "t.csv", "--out", "link.csv"], "same file as the input DATA"),
        (["forecast", "fit.nc", "q.csv", "--out", "fit.nc"], "same file as the input FIT"),
        (["forecast", "fit.nc", "q.csv", "--out", "q.csv"], "same file as the input QUERIES"),
        (["diagnose", "fit.nc", "--out", "fit.nc"], "same file as the input FIT"),
        (["fit", "t.csv", "--out", "sub"], "is a folder"),
        (["forecast", "fit.nc", "q.csv", "--out", "sub"], "is a folder"),
        (["diagnose", "fit.nc", "--out", "sub"], "is a folder"),
        (["fit", "t.csv", "--out", "missing/fit.nc"], "does not exist"),
        (["forecast", "fit.nc", "q.csv", "--out", "missing/fc.csv"], "does not exist"),
        (["fit", "t.csv", "--out", "t.csv/fit.nc"], "is a file"),
        (["demo", "t.csv", "--out", "t.csv"], "is a file"),
        (["demo", "fit.nc", "--out", "."], "would overwrite the input DATA"),
        (["backtest", "t.csv", "--out", "t.csv"], "is a file"),
        (["sbc", "--out", "t.csv"], "is a file"),
        (["report", "fit.nc", "--out", "t.csv"], "is a file"),
        (["report", "fit.nc", "--backtest", "sub", "--out", "sub"], "is the input --backtest"),
    ],
)
def test_outputs_are_refused_before_any_work(fitted, capsys, sampler, argv, part):
    work = fitted.parent
    (work / "sub").mkdir()
    (work / "link.csv").symlink_to(work / "t.csv")
    _, err = run(work, capsys, argv, EXIT_USAGE)
    assert part in err, err
    assert sampler.calls == 0
    assert not (work / "missing").exists()


def test_an_unwritable_folder_is_refused(work, capsys):
    if os.geteuid() == 0:
        pytest.skip("root writes anywhere")
    (work / "ro").mkdir()
    (work / "ro").chmod(0o500)
    try:
        _, err = run(work, capsys, ["fit", "t.csv", "--out", "ro/fit.nc"], EXIT_USAGE)
        assert "permission denied" in err
    finally:
        (work / "ro").chmod(0o700)


def test_output_folders_are_created_only_once_the_inputs_are_good(work, capsys, source, sampler):
    bad = source.assign(MMLU=source["MMLU"].where(source.index != 3, 1.7))
    write(work, "bad.csv", bad)
    run(work, capsys, ["demo", "bad.csv", "--out", "new/out"], EXIT_USAGE)
    assert not (work / "new").exists()
    run(work, capsys, ["demo", "t.csv", "--family", str(source["Family2"].iloc[0]), "--skills", "2",
                       "--out", "new/out"], EXIT_INTERRUPTED)
    assert sampler.calls == 1 and not (work / "new").exists()  # interrupted while sampling


# --- arguments ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "extra, part",
    [
        (["--chains", "0"], "--chains 0"),
        (["--chains", "-2"], "--chains -2"),
        (["--draws", "0"], "--draws 0"),
        (["--warmup", "-5"], "--warmup -5"),
        (["--seed", "-1"], "--seed -1"),
        (["--seed", str(2**32)], "0 to 4294967295"),
        (["--skills", "0"], "--skills 0"),
        (["--skills", "-1"], "--skills -1"),
        (["--skills", "5"], "5 skills cannot be fitted to 4 benchmarks"),
        (["--benchmarks", "MMLU", "ARC", "GSM8K"], "4 skills cannot be fitted to 3 benchmarks"),
        (["--floor", "MMLU=abc"], "'abc' is not a number"),
        (["--floor", "MMLU"], "NAME=VALUE"),
        (["--floor", "MMLU=25"], "[0, 1)"),
        (["--floor", "MyQA=0.2"], "'MyQA', which is not a benchmark being fitted"),
        (["--floor", "GSM8K=0.1", "--benchmarks", "MMLU", "ARC"], "'GSM8K', which is not a benchmark"),
        (["--option", "warp_drive=1"], "not a model option"),
        (["--option", "n_skills"], "NAME=VALUE"),
        (["--benchmarks", "MMLU", "NOPE"], "NOPE not in the table"),
    ],
)
def test_fit_arguments_are_checked_before_sampling(work, capsys, sampler, extra, part):
    _, err = run(work, capsys, ["fit", "t.csv", "--out", "fit.nc", *extra], EXIT_USAGE)
    assert part in err, err
    assert sampler.calls == 0 and not (work / "fit.nc").exists()


@pytest.mark.parametrize(
    "argv, part",
    [
        (["forecast", "fit.nc", "q.csv", "--out", "fc.csv", "--seed", "-1"], "--seed -1"),
        (["forecast", "fit.nc", "q.csv", "--out", "fc.csv", "--seed", "4294967296"], "--seed"),
        (["backtest", "t.csv", "--out", "bt", "--chains", "0"], "--chains 0"),
        (["backtest", "t.csv", "--out", "bt", "--jobs", "0"], "--jobs 0"),
        (["backtest", "t.csv", "--out", "bt", "--set", "v9"], "unknown set"),
        (["sbc", "--reps", "0", "--out", "sbc"], "--reps 0"),
        (["sbc", "--n-draws", "-1", "--out", "sbc"], "--n-draws -1"),
        (["sbc", "--template", "nope.csv", "--out", "sbc"], "no table at"),
        (["demo", "t.csv", "--draws", "0", "--out", "d"], "--draws 0"),
        (["demo", "nope.csv", "--out", "d"], "nope.csv"),
        (["report", "nope.nc", "--out", "r"], "no fit file at"),
        (["compare", "fit.nc", "nope.nc"], "no fit file at"),
        (["diagnose", "fit.nc", "--max-rows", "0"], "--max-rows 0"),
        (["diagnose", "fit.nc", "--prob", "90"], "--prob 90"),
        (["diagnose", "fit.nc", "--out", "missing/summary.csv"], "does not exist"),
        (["compare", "fit.nc", "fit.nc", "--names", "a"], "one name per fit"),
    ],
)
def test_other_commands_check_their_arguments(fitted, capsys, sampler, argv, part):
    _, err = run(fitted.parent, capsys, argv, EXIT_USAGE)
    assert part in err, err
    assert sampler.calls == 0
    assert not any((fitted.parent / d).exists() for d in ("bt", "sbc", "d", "r"))


def test_the_default_table_is_named_when_missing(work, capsys, monkeypatch):
    monkeypatch.setenv("SLOTH_BAYES_DATA", str(work / "gone.csv"))
    _, err = run(work, capsys, ["fit", "--out", "fit.nc"], EXIT_USAGE)
    assert "gone.csv" in err


def test_debug_shows_the_traceback(work, capsys):
    with pytest.raises(Exception, match="--chains 0"):
        main(["fit", "t.csv", "--out", "fit.nc", "--chains", "0", "--debug"])


# --- training tables ---------------------------------------------------------------------------------
def _edit(name):
    """Table edits, each with the part of the message that must name the problem."""
    def cell(t):
        t = t.copy()
        t.loc[3, "MMLU"] = 1.7
        return t

    def family(t):
        t = t.copy()
        first = t.index[t["Family2"] == t["Family2"].iloc[0]][0]
        t.loc[first, "Family"] = "intruder"
        return t

    def case(t):
        t = t.copy()
        t.loc[5, "Model"] = t.loc[4, "Model"].upper()
        return t

    def case_family2(t):
        t = t.copy()
        t.loc[0, "Family2"] = t.loc[0, "Family2"].upper()
        return t

    def spaces(t):
        t = t.copy()
        t.loc[5, "Model"] = f"  {t.loc[4, 'Model']} "
        return t

    return {
        "cell": (cell, ["'MMLU'", "one accuracy outside [0, 1]: 1.7", lambda t: t.loc[3, "Model"]], ["percent"]),
        "percent": (lambda t: t.assign(MMLU=t["MMLU"] * 100), ["looks like percent", "divide by 100"], []),
        "family": (family, ["'intruder'", "sub-family", "belongs to one family"], []),
        "case": (case, ["differ only in case", lambda t: t.loc[4, "Model"].upper()], []),
        "case_family2": (case_family2, ["'Family2'", "differ only in case"], []),
        "spaces": (spaces, ["duplicate model names"], []),
        "raw_size": (lambda t: t.assign(**{"#Params (B)": t["#Params (B)"] * 1e9}),
                     ["'#Params (B)'", "divide by 1e9"], []),
        "raw_tokens": (lambda t: t.assign(**{"Pretraining Data Size (T)": t["Pretraining Data Size (T)"] * 1e12}),
                       ["'Pretraining Data Size (T)'", "divide by 1e12"], []),
        "one_llm": (lambda t: t.iloc[:1], ["1 LLM with a score", "at least 3"], []),
        "two_llms": (lambda t: t.iloc[2:4], ["2 LLMs with a score", "at least 3"], []),
        "no_rows": (lambda t: t.iloc[:0], ["empty (no rows)"], []),
        "non_numeric": (lambda t: t.assign(ARC=t["ARC"].astype(object).where(t.index != 2, "about 0.5")),
                        ["'ARC'", "non-numeric"], []),
        "no_family2": (lambda t: t.drop(columns="Family2"), ["'Family2'"], []),
        "negative_size": (lambda t: t.assign(**{"#Params (B)": -t["#Params (B)"]}), ["positive"], []),
    }[name]


@pytest.mark.parametrize(
    "name",
    ["cell", "percent", "family", "case", "case_family2", "spaces", "raw_size", "raw_tokens",
     "one_llm", "two_llms", "no_rows", "non_numeric", "no_family2", "negative_size"],
)
def test_bad_training_tables(work, capsys, source, sampler, name):
    edit, parts, absent = _edit(name)
    parts = [part(source) if callable(part) else part for part in parts]  # names of the table's rows
    write(work, "bad.csv", edit(source))
    _, err = run(work, capsys, ["fit", "bad.csv", "--out", "fit.nc", "--skills", "2"], EXIT_USAGE)
    for part in parts:
        assert part in err, err
    for part in absent:
        assert part not in err, err
    assert sampler.calls == 0


def test_an_empty_benchmark_column_is_dropped_with_a_warning(work, capsys, source, sampler):
    write(work, "gap.csv", source.assign(GSM8K=np.nan))
    _, err = run(work, capsys, ["fit", "gap.csv", "--out", "fit.nc", "--skills", "2"], EXIT_INTERRUPTED)
    assert "warning: benchmark column(s) GSM8K have no score" in err and sampler.calls == 1
    _, err = run(work, capsys, ["fit", "gap.csv", "--out", "fit.nc", "--skills", "1",
                                "--benchmarks", "MMLU", "GSM8K"], EXIT_USAGE)
    assert "--benchmarks GSM8K: no LLM of the table has a score" in err


def test_names_are_compared_without_surrounding_spaces(work, capsys, source, sampler):
    padded = source.assign(Model=" " + source["Model"] + " ", Family2=source["Family2"] + "  ")
    write(work, "padded.csv", padded)
    run(work, capsys, ["fit", "padded.csv", "--out", "fit.nc", "--skills", "2", "-q"], EXIT_INTERRUPTED)
    assert sampler.calls == 1


# --- files that are not readable CSV tables ----------------------------------------------------------
@pytest.mark.parametrize(
    "content, part",
    [
        (b"", "is empty"),
        (b"\n\n", "is empty"),
        (b"Model,Family,Family2\n", "empty (no rows)"),
        (b"Model,Family,Family2\na,b,c,d\n", "line 2 has 4 fields but the header has 3"),
        (b"Model,Family,Family2\na,b,c\nd,e,f,g,h\n", "line 3 has 5 fields"),
        (b"Model;Family;Family2\na;b;c\n", "separated by semicolons"),
        (b"Model\tFamily\tFamily2\na\tb\tc\n", "separated by tabs"),
        ("Model,Family,Family2\ngr\u00fcn,b,c\n".encode("latin-1"), "not UTF-8"),
        (b"\x89HDF\r\n\x1a\n\x00\x00\xff\xfe", "not UTF-8"),
        (b"Model,MMLU,MMLU\na,0.1,0.2\n", "'MMLU' appear more than once"),
    ],
)
def test_unreadable_csv_files(work, capsys, sampler, content, part):
    (work / "bad.csv").write_bytes(content)
    _, err = run(work, capsys, ["fit", "bad.csv", "--out", "fit.nc"], EXIT_USAGE)
    assert part in err, err
    _, err = run(work, capsys, ["forecast", "t.csv", "bad.csv", "--out", "fc.csv"], EXIT_USAGE)
    assert part in err, err  # the query table is read before the fit
    assert sampler.calls == 0


def test_a_folder_given_as_a_table(work, capsys):
    (work / "dir.csv").mkdir()
    _, err = run(work, capsys, ["fit", "dir.csv", "--out", "fit.nc"], EXIT_USAGE)
    assert "is a folder" in err


# --- queries -----------------------------------------------------------------------------------------
def test_query_family_contradicting_its_sub_family(fitted, capsys, source):
    q = pd.read_csv(fitted.parent / "q.csv")
    write(fitted.parent, "q2.csv", q.assign(Family="somebody-else"))
    _, err = run(fitted.parent, capsys, ["forecast", "fit.nc", "q2.csv", "--out", "fc.csv"], EXIT_USAGE)
    assert "which the fit knows in family" in err and "'somebody-else'" in err
    write(fitted.parent, "q3.csv", q.assign(Family2=q["Family2"].str.upper()))
    _, err = run(fitted.parent, capsys, ["forecast", "fit.nc", "q3.csv", "--out", "fc.csv"], EXIT_USAGE)
    assert "differ from the fit's only in case" in err


@pytest.mark.parametrize(
    "column, value, part",
    [
        ("#Params (B)", 1e4, "times above the largest"),
        ("#Params (B)", 1e-6, "times below the smallest"),
        ("Pretraining Data Size (T)", 900.0, "times above the largest"),
    ],
)
def test_far_queries_are_flagged(fitted, capsys, column, value, part):
    q = pd.read_csv(fitted.parent / "q.csv")
    q.loc[0, column] = value
    write(fitted.parent, "far.csv", q)
    _, err = run(fitted.parent, capsys, ["forecast", "fit.nc", "far.csv", "--out", "fc.csv"], EXIT_OK,
                 creates=("fc.csv",))
    assert err.startswith("warning: query ") and part in err and column in err, err
    assert err.count("\n") == 1  # the near query is not flagged


@pytest.mark.parametrize(
    "edit, part",
    [
        (lambda q: q.iloc[:0], "empty (no rows)"),
        (lambda q: q.assign(**{"#Params (B)": 7e9}), "divide by 1e9"),
        (lambda q: q.assign(Family=["x", "y"]), "belongs to one family"),
        (lambda q: q.drop(columns="Instruct"), "'Instruct'"),
    ],
)
def test_bad_query_tables(fitted, capsys, edit, part):
    q = pd.read_csv(fitted.parent / "q.csv")
    write(fitted.parent, "bad.csv", edit(q))
    _, err = run(fitted.parent, capsys, ["forecast", "fit.nc", "bad.csv", "--out", "fc.csv"], EXIT_USAGE)
    assert part in err, err


# --- writes ------------------------------------------------------------------------------------------
def test_an_interrupted_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "fc.csv"
    target.write_text("old")
    for stop in (KeyboardInterrupt, OSError):
        with pytest.raises(stop):
            with atomic_write(target) as fh:
                fh.write("half")
                raise stop()
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["fc.csv"]


def test_an_interrupted_fit_save_leaves_the_old_file_and_no_temporary(tmp_path, source, monkeypatch):
    import xarray as xr

    from sloth_bayes.io import load_fit, save_fit

    path = tiny_fit(tmp_path / "fit.nc", source)
    before = path.read_bytes()
    tree = load_fit(path)

    def killed(self, target, **kwargs):
        Path(target).write_bytes(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(xr.DataTree, "to_netcdf", killed)
    with pytest.raises(KeyboardInterrupt):
        save_fit(tree, path)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["fit.nc"]


# --- real processes: signals, speed of --help --------------------------------------------------------
def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu"}


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, EXIT_INTERRUPTED), (signal.SIGTERM, 128 + signal.SIGTERM)])
def test_a_signal_while_reading_exits_cleanly(tmp_path, sig, code):
    """Ctrl-C (or SIGTERM) while the command waits on its input: a status, one line, no
    traceback. The input is a named pipe, so the command is surely inside its work."""
    fifo = tmp_path / "t.csv"
    os.mkfifo(fifo)
    proc = subprocess.Popen(
        [sys.executable, "-m", "sloth_bayes", "fit", str(fifo), "--out", str(tmp_path / "fit.nc")],
        env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 60
    writer = None
    while writer is None:  # opening the write end succeeds once the command reads the pipe
        try:
            writer = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.05)
    time.sleep(0.2)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    os.close(writer)
    assert proc.returncode == code, err
    assert "Traceback" not in err and err.strip() in ("interrupted", "terminated"), err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.csv"]


def test_help_is_fast_and_imports_no_heavy_library():
    code = (
        "import sys, contextlib, io\n"
        "from sloth_bayes.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    main(['--help']); main(['fit', '--help']); main(['--version'])\n"
        "heavy = {'jax', 'numpyro', 'arviz', 'matplotlib', 'xarray', 'scipy', 'pandas'}\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=_env(), capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "sloth_bayes", "--help"], env=_env(), capture_output=True, text=True)
    took = time.perf_counter() - start
    assert done.returncode == 0 and "exit status" in done.stdout
    assert took < 3.0, f"--help took {took:.2f} s"  # ~0.3 s on an idle machine; slack for shared CPUs


def test_verdicts_exit_1_not_2(fitted, capsys, monkeypatch):
    """A negative verdict is status 1, distinct from bad input (2)."""
    import sloth_bayes.diagnostics as diagnostics

    class Report:
        ok = False

        def text(self):
            return "NOT converged"

    monkeypatch.setattr(diagnostics, "convergence_report", lambda idata, **kw: Report())
    monkeypatch.setattr(diagnostics, "summary_table", lambda idata, **kw: pd.DataFrame({"mean": [0.0]}))
    out, _ = run(fitted.parent, capsys, ["diagnose", "fit.nc"], EXIT_VERDICT)
    assert "NOT converged" in out
