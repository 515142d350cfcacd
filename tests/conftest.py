"""Shared fixtures: one small simulated fit and one real fit per test session.

Compilation dominates the cost of small fits on 2 cores, so fits are shared between test
modules instead of being repeated.
"""

from __future__ import annotations

from pathlib import Path

import numpyro
import pandas as pd
import pytest

numpyro.set_host_device_count(2)  # before JAX starts: two chains in parallel

# Identical programs (same model and shapes: repeated small fits, the notebooks) compile
# once per test run: JAX's persistent compilation cache, in a temporary folder.
import atexit  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402

import jax  # noqa: E402

from sloth_bayes.model import ModelConfig  # noqa: E402

_JAX_CACHE = tempfile.mkdtemp(prefix="sloth_bayes_jax_")
atexit.register(shutil.rmtree, _JAX_CACHE, ignore_errors=True)
jax.config.update("jax_compilation_cache_dir", _JAX_CACHE)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)

SIM_CONFIG = ModelConfig(n_skills=2)
QUICK = dict(chains=2, warmup=150, draws=150, svi_steps=400, svi_restarts=2)


def real_table_path() -> str:
    """The real table the tests fit: ``$SLOTH_BAYES_DATA`` if set, else the embedded table.
    A variable naming a missing file fails the test instead of falling back."""
    from sloth_bayes.datasets import find_leaderboard

    try:
        return str(find_leaderboard())
    except FileNotFoundError as err:
        pytest.fail(str(err))


def shared_data_file(name: str) -> Path | None:
    """``shared/data/NAME`` in a folder above the repository (the development copy of the
    data), or None."""
    for folder in Path(__file__).resolve().parents:
        candidate = folder / "shared" / "data" / name
        if candidate.is_file():
            return candidate
    return None


@pytest.fixture(scope="session")
def shared_leaderboard() -> Path:
    path = shared_data_file("leaderboard_v2.csv")
    if path is None:
        pytest.skip("no shared/data/leaderboard_v2.csv above the repository to compare with")
    return path


@pytest.fixture(scope="session")
def real_table() -> pd.DataFrame:
    return pd.read_csv(real_table_path())


@pytest.fixture(scope="session")
def simulated():
    """A small simulated leaderboard (K=2) and its generating parameters."""
    from sloth_bayes.simulate import simulate_table

    return simulate_table(config=SIM_CONFIG, seed=3)


@pytest.fixture(scope="session")
def sim_fit(simulated):
    from sloth_bayes import SlothBayes

    table, _ = simulated
    return SlothBayes(config=SIM_CONFIG, **QUICK).fit(table, seed=0, progress_bar=False)


@pytest.fixture(scope="session")
def real_fit(real_table):
    """The leaderboard without qwen1.5's larger base models, at reduced draws."""
    from sloth_bayes import SlothBayes

    fam = real_table[real_table["Family2"] == "qwen1.5"].sort_values("#Params (B)", kind="stable")
    train = real_table[~real_table["Model"].isin(fam["Model"].iloc[1:])]
    model = SlothBayes(2, **QUICK).fit(train, seed=0, progress_bar=False)
    return model, fam.iloc[1:]
