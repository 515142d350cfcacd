"""The embedded table, locating a table, fetching the published one with pooch, the
simulated table; atomic writes."""

import os
from pathlib import Path

import pandas as pd
import pytest
import requests

from sloth_bayes import datasets
from sloth_bayes.data import DataError, read_table
from sloth_bayes.datasets import (
    CACHE_ENV,
    DATA_ENV,
    EMBEDDED_SHA256,
    PUBLISHED_FILE,
    FetchError,
    cache_dir,
    embedded_leaderboard_path,
    fetch_leaderboard,
    file_sha256,
    find_leaderboard,
    load_leaderboard,
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
    """No data variable; the cache lives in tmp_path/cache."""
    monkeypatch.delenv(DATA_ENV, raising=False)
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))


@pytest.fixture
def published(tmp_path):
    """A small valid table standing in for the published one: (file URL, its sha256)."""
    source = tmp_path / "published.csv"
    small_table().to_csv(source, index=False)
    return source, file_sha256(source)


def leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.startswith(".") or p.name.endswith(".tmp")]


# --- the embedded table ----------------------------------------------------------------------


def test_embedded_table_loads_offline():
    table = load_leaderboard()
    assert len(table) == 160 and table["Family2"].nunique() == 57
    assert table["Model"].is_unique
    clean, meta = read_table(embedded_leaderboard_path())  # a valid training table as shipped
    assert len(clean) == 160 and len(meta) == 12
    assert file_sha256(embedded_leaderboard_path()) == EMBEDDED_SHA256


def test_embedded_table_has_its_licence_and_note():
    folder = embedded_leaderboard_path().parent
    assert "MIT License" in (folder / "LICENSE-sloth-data.txt").read_text()
    note = (folder / "README.md").read_text()
    assert "data_v2.csv" in note and "excerpt" in note and "2412.06540" in note


def test_embedded_table_matches_the_shared_copy(shared_leaderboard):
    assert embedded_leaderboard_path().read_bytes() == shared_leaderboard.read_bytes()


def test_load_leaderboard_path(tmp_path):
    small_table().to_csv(tmp_path / "mine.csv", index=False)
    pd.testing.assert_frame_equal(load_leaderboard(tmp_path / "mine.csv"), small_table())


# --- locating --------------------------------------------------------------------------------


def test_lookup_order(monkeypatch, tmp_path):
    explicit, env = tmp_path / "explicit.csv", tmp_path / "env.csv"
    for path in (explicit, env):
        path.write_text("x")
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / PUBLISHED_FILE).write_text("x")  # a download is never picked silently
    assert find_leaderboard() == embedded_leaderboard_path()
    monkeypatch.setenv(DATA_ENV, str(env))
    assert find_leaderboard() == env
    assert find_leaderboard(explicit) == explicit


def test_explicit_path_must_exist(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.csv"):
        find_leaderboard(tmp_path / "missing.csv")


def test_env_var_must_exist(monkeypatch, tmp_path):
    monkeypatch.setenv(DATA_ENV, str(tmp_path / "gone.csv"))
    with pytest.raises(FileNotFoundError, match=f"{DATA_ENV}.*gone.csv"):
        find_leaderboard()


def test_cache_dir(monkeypatch, tmp_path):
    assert cache_dir() == tmp_path / "cache"
    monkeypatch.delenv(CACHE_ENV)
    import pooch

    assert cache_dir() == Path(pooch.os_cache("sloth_bayes"))


# --- fetching the published table ------------------------------------------------------------


def test_source_is_the_sloth_repository():
    assert datasets.SLOTH_DATA_URL.startswith("https://raw.githubusercontent.com/felipemaiapolo/sloth/")
    assert datasets.SLOTH_DATA_URL.endswith("/data/data_v2.csv")
    assert datasets.SLOTH_DATA_COMMIT in datasets.SLOTH_DATA_URL


def test_fetch_verifies_the_hash(published, tmp_path):
    source, digest = published
    path = fetch_leaderboard(source.as_uri(), sha256=digest)
    assert path == tmp_path / "cache" / PUBLISHED_FILE
    assert path.read_bytes() == source.read_bytes()
    assert leftovers(path.parent) == []
    assert find_leaderboard(path) == path


def test_fetch_rejects_a_wrong_hash(published, tmp_path):
    source, _ = published
    dest = tmp_path / "mine.csv"
    dest.write_text("old")
    with pytest.raises(FetchError, match="hash"):
        fetch_leaderboard(source.as_uri(), sha256="0" * 64, dest=dest, force=True)
    assert dest.read_text() == "old"
    assert leftovers(tmp_path) == []


def test_fetch_without_hash(published):
    source, _ = published
    assert fetch_leaderboard(source.as_uri(), sha256=None).read_bytes() == source.read_bytes()


def test_fetch_offline(monkeypatch, tmp_path):
    def offline(url, output_file, pooch=None, check_only=False):
        raise requests.exceptions.ConnectionError("no network")

    monkeypatch.setattr(datasets, "_downloader", lambda url, timeout: offline)
    with pytest.raises(FetchError) as info:
        fetch_leaderboard()
    from sloth_bayes.errors import InputError

    assert isinstance(info.value, InputError)  # the command line's exit 2, with the fix
    assert DATA_ENV in str(info.value) and "no network" in str(info.value)
    assert not (tmp_path / "cache" / PUBLISHED_FILE).exists()
    assert leftovers(tmp_path / "cache") == []


def test_fetch_missing_file(tmp_path):
    with pytest.raises(FetchError, match="Could not download"):
        fetch_leaderboard((tmp_path / "nothing.csv").as_uri())


def test_fetch_keeps_existing_unless_forced_or_stale(published, tmp_path):
    source, digest = published
    dest = tmp_path / "mine.csv"
    dest.write_text("old")
    assert fetch_leaderboard(source.as_uri(), sha256=None, dest=dest).read_text() == "old"
    # a hash is given and the file does not match it: downloaded again
    assert fetch_leaderboard(source.as_uri(), sha256=digest, dest=dest).read_bytes() == source.read_bytes()
    dest.write_text("old")
    fetch_leaderboard(source.as_uri(), sha256=None, dest=dest, force=True)
    assert dest.read_bytes() == source.read_bytes()


def test_fetch_invalid_table_leaves_dest(tmp_path):
    source = tmp_path / "published.csv"
    small_table().assign(MMLU=[30.0, 35.0, None]).to_csv(source, index=False)
    dest = tmp_path / "mine.csv"
    dest.write_text("old")
    with pytest.raises(DataError, match="percent"):
        fetch_leaderboard(source.as_uri(), sha256=None, dest=dest, force=True)
    assert dest.read_text() == "old"
    assert leftovers(tmp_path) == []


def test_fetch_without_family2(tmp_path):
    source = tmp_path / "published.csv"
    small_table().drop(columns="Family2").to_csv(source, index=False)
    with pytest.raises(DataError, match="no 'Family2'"):
        fetch_leaderboard(source.as_uri(), sha256=None)


# --- the simulated table ---------------------------------------------------------------------


def test_load_simulated_missing(monkeypatch, tmp_path):
    monkeypatch.setattr(datasets, "package_data_path", lambda name: tmp_path / name)
    with pytest.raises(FileNotFoundError, match="scripts/make_simulated.py"):
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
