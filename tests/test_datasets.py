"""Locating, fetching and caching the real table; atomic writes; the demo set."""

import os
import urllib.request
from pathlib import Path
from urllib.error import URLError

import pandas as pd
import pytest

from sloth_bayes import datasets
from sloth_bayes.data import DataError
from sloth_bayes.datasets import (
    CACHE_ENV,
    DATA_ENV,
    LEADERBOARD_FILE,
    FetchError,
    cache_dir,
    fetch_leaderboard,
    find_leaderboard,
    load_simulated,
)
from sloth_bayes.utils import atomic_write


def small_table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "Model": ["m1", "m2", "m3"],
            "Family": ["f", "f", "g"],
            "Family2": ["f", "f-chat", "g"],
            "Instruct": [False, True, False],
            "#Params (B)": [1.0, 1.0, 3.0],
            "Pretraining Data Size (T)": [0.5, 0.5, None],
            "MMLU": [0.3, 0.35, None],
            "GSM8K": [0.01, 0.05, 0.1],
        }
    )


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch, tmp_path):
    """No real data variable; the cache lives in tmp_path/cache."""
    monkeypatch.delenv(DATA_ENV, raising=False)
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))


def leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]


# --- locating ----------------------------------------------------------------------


def test_cache_dir(monkeypatch, tmp_path):
    assert cache_dir() == tmp_path / "cache"
    monkeypatch.delenv(CACHE_ENV)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "sloth_bayes"


def test_lookup_order(monkeypatch, tmp_path):
    explicit, env = tmp_path / "explicit.csv", tmp_path / "env.csv"
    cached = tmp_path / "cache" / LEADERBOARD_FILE
    cached.parent.mkdir()
    for path in (explicit, env, cached):
        path.write_text("x")
    assert find_leaderboard() == cached
    monkeypatch.setenv(DATA_ENV, str(env))
    assert find_leaderboard() == env
    assert find_leaderboard(explicit) == explicit


def test_explicit_path_must_exist(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.csv"):
        find_leaderboard(tmp_path / "missing.csv")


def test_env_var_must_exist(monkeypatch, tmp_path):
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / LEADERBOARD_FILE).write_text("x")  # not used as a fallback
    monkeypatch.setenv(DATA_ENV, str(tmp_path / "gone.csv"))
    with pytest.raises(FileNotFoundError, match=f"{DATA_ENV}.*gone.csv"):
        find_leaderboard()


def test_nothing_found():
    with pytest.raises(FileNotFoundError) as info:
        find_leaderboard()
    assert DATA_ENV in str(info.value) and "sloth-bayes data fetch" in str(info.value)


# --- fetching ----------------------------------------------------------------------


def test_fetch_offline(monkeypatch, tmp_path):
    def offline(*args, **kwargs):
        raise URLError("no network")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(FetchError) as info:
        fetch_leaderboard()
    assert isinstance(info.value, RuntimeError)
    assert DATA_ENV in str(info.value) and "no network" in str(info.value)
    assert not (tmp_path / "cache" / LEADERBOARD_FILE).exists()


def test_fetch_file_url(tmp_path):
    source = tmp_path / "published.csv"
    small_table().to_csv(source, index=False)
    path = fetch_leaderboard(source.as_uri())
    assert path == tmp_path / "cache" / LEADERBOARD_FILE
    assert path.read_bytes() == source.read_bytes()
    assert find_leaderboard() == path
    assert leftovers(path.parent) == []


def test_fetch_keeps_existing_unless_forced(tmp_path):
    source = tmp_path / "published.csv"
    small_table().to_csv(source, index=False)
    dest = tmp_path / "mine.csv"
    dest.write_text("old")
    assert fetch_leaderboard(source.as_uri(), dest=dest).read_text() == "old"
    fetch_leaderboard(source.as_uri(), dest=dest, force=True)
    assert dest.read_bytes() == source.read_bytes()


def test_fetch_invalid_table_leaves_dest(tmp_path):
    source = tmp_path / "published.csv"
    small_table().assign(MMLU=[30.0, 35.0, None]).to_csv(source, index=False)
    dest = tmp_path / "mine.csv"
    dest.write_text("old")
    with pytest.raises(DataError, match="percent"):
        fetch_leaderboard(source.as_uri(), dest=dest, force=True)
    assert dest.read_text() == "old"
    assert leftovers(tmp_path) == []


def test_fetch_without_family2(tmp_path):
    source = tmp_path / "published.csv"
    small_table().drop(columns="Family2").to_csv(source, index=False)
    with pytest.raises(DataError, match="no 'Family2'"):
        fetch_leaderboard(source.as_uri())


# --- simulated demo set ------------------------------------------------------------


def test_load_simulated_missing(monkeypatch, tmp_path):
    monkeypatch.setattr(datasets, "package_data_path", lambda name: tmp_path / name)
    with pytest.raises(FileNotFoundError, match="python -m sloth_bayes.simulate"):
        load_simulated()


def test_load_simulated(monkeypatch, tmp_path):
    small_table().to_csv(tmp_path / "simulated_leaderboard.csv", index=False)
    monkeypatch.setattr(datasets, "package_data_path", lambda name: tmp_path / name)
    pd.testing.assert_frame_equal(load_simulated(), pd.read_csv(tmp_path / "simulated_leaderboard.csv"))


# --- atomic writes -----------------------------------------------------------------


def test_atomic_write(tmp_path):
    target = tmp_path / "out.txt"
    with atomic_write(target) as f:
        f.write("new")
        assert not target.exists()  # nothing visible until the block ends
    assert target.read_text() == "new"
    with atomic_write(target, "wb") as f:
        f.write(b"bytes")
    assert target.read_bytes() == b"bytes"


def test_atomic_write_respects_umask(tmp_path):
    old = os.umask(0o022)
    try:
        with atomic_write(tmp_path / "out.txt") as f:
            f.write("x")
    finally:
        os.umask(old)
    assert (tmp_path / "out.txt").stat().st_mode & 0o777 == 0o644  # not mkstemp's 0o600


def test_atomic_write_error_keeps_old(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_write(target) as f:
        f.write("half")
        raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert leftovers(tmp_path) == []


def test_atomic_write_bad_mode(tmp_path):
    with pytest.raises(ValueError, match="mode"), atomic_write(tmp_path / "x", "a"):
        pass
