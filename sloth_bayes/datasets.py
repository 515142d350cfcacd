"""Where the data live: the real leaderboard table, its download cache, the demo set.

The real table (160 open LLMs, Open LLM Leaderboard v1 + v2, compiled by the Sloth
paper's authors under the MIT licence) is not shipped with the package. It is found,
in this order, at an explicit path, at ``$SLOTH_BAYES_DATA``, or in the cache
(``$SLOTH_BAYES_CACHE``, default ``~/.cache/sloth_bayes``) where
:func:`fetch_leaderboard` (``sloth-bayes data fetch``) puts it. A simulated table
made by the package's own simulator ships with it for offline demos and tests.
"""

from __future__ import annotations

import os
import urllib.request
from pathlib import Path
from urllib.error import URLError

import pandas as pd

from sloth_bayes.data import FAMILY, SUBFAMILY, DataError, read_table
from sloth_bayes.utils import atomic_path, package_data_path

__all__ = [
    "CACHE_ENV",
    "DATA_ENV",
    "LEADERBOARD_FILE",
    "SIMULATED_FILE",
    "SLOTH_DATA_URL",
    "FetchError",
    "cache_dir",
    "fetch_leaderboard",
    "find_leaderboard",
    "load_simulated",
]

DATA_ENV = "SLOTH_BAYES_DATA"
CACHE_ENV = "SLOTH_BAYES_CACHE"
SLOTH_DATA_URL = "https://raw.githubusercontent.com/felipemaiapolo/sloth/main/data/data_v2.csv"
LEADERBOARD_FILE = "leaderboard_v2.csv"
SIMULATED_FILE = "simulated_leaderboard.csv"

_LOCAL_HINT = (
    f"Download the table on a machine with internet access (or copy it) and set "
    f"{DATA_ENV}=/path/to/{LEADERBOARD_FILE}, or pass the path explicitly."
)


class FetchError(RuntimeError):
    """The leaderboard table could not be downloaded (offline, bad URL, server error)."""


def cache_dir() -> Path:
    """Return the cache folder: ``$SLOTH_BAYES_CACHE`` or ``~/.cache/sloth_bayes``.

    The folder is not created here; :func:`fetch_leaderboard` creates it when writing.
    """
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "sloth_bayes"


def find_leaderboard(path: str | os.PathLike[str] | None = None) -> Path:
    """Locate the real leaderboard table.

    Parameters
    ----------
    path : str or os.PathLike, optional
        Explicit location; wins over everything else and must exist.

    Returns
    -------
    pathlib.Path
        ``path`` if given, else ``$SLOTH_BAYES_DATA`` if set, else the cached
        ``cache_dir() / "leaderboard_v2.csv"``.

    Raises
    ------
    FileNotFoundError
        If the chosen location does not exist (an explicit path or the environment
        variable is never silently skipped), or nothing is found; the message says
        how to provide the table.
    """
    if path is not None:
        found = Path(path).expanduser()
        if not found.is_file():
            raise FileNotFoundError(f"No leaderboard table at {str(found)!r}: check the path.")
        return found
    env = os.environ.get(DATA_ENV)
    if env:
        found = Path(env).expanduser()
        if not found.is_file():
            raise FileNotFoundError(
                f"{DATA_ENV} is set to {env!r} but there is no file there. Point it at a "
                f"local copy of {LEADERBOARD_FILE}, or unset it to use the cache."
            )
        return found
    cached = cache_dir() / LEADERBOARD_FILE
    if cached.is_file():
        return cached
    raise FileNotFoundError(
        f"No leaderboard table found: {DATA_ENV} is not set and the cache ({cached}) is "
        f"empty. Set {DATA_ENV} to a local copy of the table, or run "
        f"`sloth-bayes data fetch` (needs internet) to download it into the cache."
    )


def _validate_download(path: Path, url: str) -> None:
    """Raise DataError if the downloaded file is not a usable training table."""
    try:
        columns = pd.read_csv(path, nrows=0).columns
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise DataError(f"The file downloaded from {url} is not a CSV table ({err}).") from err
    if SUBFAMILY not in columns and FAMILY in columns:
        raise DataError(
            f"The table downloaded from {url} has {FAMILY!r} but no {SUBFAMILY!r} column "
            f"(sub-families, which separate base and chat variants). The package does not "
            f"invent sub-families: add the column yourself (e.g. copy {FAMILY!r}) and "
            f"point {DATA_ENV} at your copy."
        )
    try:
        read_table(path)
    except DataError as err:
        raise DataError(f"The table downloaded from {url} failed validation: {err}") from err


def fetch_leaderboard(
    url: str = SLOTH_DATA_URL,
    *,
    dest: str | os.PathLike[str] | None = None,
    force: bool = False,
    timeout: float = 30.0,
) -> Path:
    """Download the leaderboard table into the cache (or ``dest``).

    The download is written to a temporary file next to ``dest``, validated with
    :func:`~sloth_bayes.data.read_table`, and only then moved onto ``dest``, so a
    failed or invalid download never replaces a good file.

    Parameters
    ----------
    url : str
        Source; default the Sloth paper's published table (MIT licence). Any URL
        :func:`urllib.request.urlopen` accepts, including ``file://``.
    dest : str or os.PathLike, optional
        Destination file; default ``cache_dir() / "leaderboard_v2.csv"``.
    force : bool
        Download even if ``dest`` already exists (otherwise it is returned as is).
    timeout : float
        Seconds to wait for the server.

    Returns
    -------
    pathlib.Path
        The path of the table.

    Raises
    ------
    FetchError
        If the download fails (e.g. no internet); the message says how to use a
        local copy instead.
    DataError
        If the downloaded file is not a valid table; ``dest`` is left untouched.
    """
    target = Path(dest).expanduser() if dest is not None else cache_dir() / LEADERBOARD_FILE
    if target.is_file() and not force:
        return target
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            payload = response.read()
    except (URLError, OSError, ValueError) as err:
        reason = getattr(err, "reason", err)
        raise FetchError(f"Could not download {url} ({reason}). {_LOCAL_HINT}") from err
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as tmp:
        with open(tmp, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        _validate_download(tmp, url)
    return target


def load_simulated() -> pd.DataFrame:
    """Read the simulated demo table shipped with the package.

    The table has the same columns as the real one and was generated by the
    package's simulator from known parameters (``simulated_parameters.json``), so it
    works offline and lets one check that a fit recovers the truth. It is returned
    as read (not validated; fitting validates it).

    Returns
    -------
    pandas.DataFrame
        One row per simulated LLM.

    Raises
    ------
    FileNotFoundError
        If the file is missing (e.g. a source checkout before it was generated).
    """
    path = package_data_path(SIMULATED_FILE)
    if not path.is_file():
        raise FileNotFoundError(
            f"Simulated table not found at {path}. Regenerate it from the repository "
            f"root with `python -m sloth_bayes.simulate`."
        )
    return pd.read_csv(path)
