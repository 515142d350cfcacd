"""Where the data live: the embedded leaderboard table, the published one, the simulated one.

The package ships a real table (``leaderboard_v2.csv``: 160 open LLMs, Open LLM Leaderboard
v1 + v2, an excerpt of the Sloth repository's ``data/data_v2.csv``, MIT licence), so a fit
needs no network. :func:`find_leaderboard` resolves the table a command uses: an explicit
path, else ``$SLOTH_BAYES_DATA``, else the embedded table. The full published table is a
download (:func:`fetch_leaderboard`, ``sloth-bayes data fetch``) into a cache
(``$SLOTH_BAYES_CACHE``, else the platform's cache folder). A table simulated from a fit to
the real one ships too (:func:`load_simulated`), with the parameters that generated it.

>>> from sloth_bayes.datasets import load_leaderboard
>>> table = load_leaderboard()
>>> len(table), table["Family2"].nunique()
(160, 57)
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import pandas as pd

from sloth_bayes.data import FAMILY, SUBFAMILY, DataError, read_table
from sloth_bayes.utils import package_data_path

__all__ = [
    "CACHE_ENV",
    "DATA_ENV",
    "EMBEDDED_SHA256",
    "LEADERBOARD_FILE",
    "PUBLISHED_FILE",
    "SIMULATED_FILE",
    "SIMULATED_PARAMETERS_FILE",
    "SLOTH_DATA_COMMIT",
    "SLOTH_DATA_SHA256",
    "SLOTH_DATA_URL",
    "FetchError",
    "cache_dir",
    "embedded_leaderboard_path",
    "fetch_leaderboard",
    "file_sha256",
    "find_leaderboard",
    "load_leaderboard",
    "load_simulated",
    "load_simulated_parameters",
]

DATA_ENV = "SLOTH_BAYES_DATA"
CACHE_ENV = "SLOTH_BAYES_CACHE"
#: The embedded table (package data) and its SHA-256, checked by the tests.
LEADERBOARD_FILE = "leaderboard_v2.csv"
EMBEDDED_SHA256 = "249f10cb9da36e781eb4a1ba4478a0f2b9e4b9e3ae4da1c839aecac23294a2dc"
#: The published table: the Sloth repository's ``data/data_v2.csv`` at a fixed revision.
#: ``SLOTH_DATA_COMMIT`` should name a commit and ``SLOTH_DATA_SHA256`` that file's hash;
#: while the hash is None a download is checked as a table but not against a hash.
SLOTH_DATA_COMMIT = "main"
SLOTH_DATA_URL = (
    f"https://raw.githubusercontent.com/felipemaiapolo/sloth/{SLOTH_DATA_COMMIT}/data/data_v2.csv"
)
SLOTH_DATA_SHA256: str | None = None
PUBLISHED_FILE = "data_v2.csv"
SIMULATED_FILE = "simulated_leaderboard.csv"
SIMULATED_PARAMETERS_FILE = "simulated_parameters.json"

_LOCAL_HINT = (
    "Copy the table from a machine with internet access and pass its path (or set "
    f"{DATA_ENV}=/path/to/table.csv); the embedded table needs no download."
)


from .errors import FetchError  # noqa: E402  (the one home of user-facing errors)


# --- the embedded table ----------------------------------------------------------------------
def embedded_leaderboard_path() -> Path:
    """Path of the leaderboard table shipped with the package."""
    return package_data_path(LEADERBOARD_FILE)


def load_leaderboard(path: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """Read the embedded leaderboard table (or the table at ``path``).

    Parameters
    ----------
    path : str or os.PathLike, optional
        A table of your own with the same columns; default the embedded table.

    Returns
    -------
    pandas.DataFrame
        One row per LLM, as read (fitting validates it).

    Examples
    --------
    >>> from sloth_bayes import SlothBayes                             # doctest: +SKIP
    >>> model = SlothBayes().fit(load_leaderboard())                   # doctest: +SKIP
    """
    return pd.read_csv(embedded_leaderboard_path() if path is None else find_leaderboard(path))


def find_leaderboard(path: str | os.PathLike[str] | None = None) -> Path:
    """Locate the table a command fits: ``path``, else ``$SLOTH_BAYES_DATA``, else the
    embedded table.

    Raises
    ------
    FileNotFoundError
        If an explicit path or ``$SLOTH_BAYES_DATA`` names a missing file (neither is
        skipped silently).
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
                f"table, or unset it to use the embedded one."
            )
        return found
    embedded = embedded_leaderboard_path()
    if not embedded.is_file():  # a broken install
        raise FileNotFoundError(f"The embedded table is missing ({embedded}): reinstall sloth-bayes.")
    return embedded


# --- the published table ---------------------------------------------------------------------
def cache_dir() -> Path:
    """The download cache: ``$SLOTH_BAYES_CACHE``, else the platform's cache folder for
    ``sloth_bayes`` (e.g. ``~/.cache/sloth_bayes`` on Linux). Not created here."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    import pooch

    return Path(pooch.os_cache("sloth_bayes"))


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file, hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _copy_file_url(url: str, output_file, pooch_obj=None, check_only: bool = False):
    """A pooch downloader for ``file://`` URLs (local mirrors, tests)."""
    source = Path(urllib.request.url2pathname(urlparse(url).path))
    if check_only:
        return source.is_file()
    shutil.copyfile(source, output_file)
    return None


def _downloader(url: str, timeout: float):
    import pooch

    if urlparse(url).scheme == "file":
        return _copy_file_url
    return pooch.HTTPDownloader(timeout=timeout, progressbar=False)


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
            f"invent sub-families: add the column yourself (e.g. copy {FAMILY!r}) and pass "
            f"the path of your copy."
        )
    try:
        read_table(path)
    except DataError as err:
        raise DataError(f"The table downloaded from {url} failed validation: {err}") from err


def fetch_leaderboard(
    url: str = SLOTH_DATA_URL,
    *,
    sha256: str | None = SLOTH_DATA_SHA256,
    dest: str | os.PathLike[str] | None = None,
    force: bool = False,
    timeout: float = 30.0,
) -> Path:
    """Download the published table into the cache (or ``dest``) with pooch.

    The file is downloaded into a temporary folder beside ``dest``, checked against
    ``sha256`` (when given) and validated as a training table, and only then moved onto
    ``dest``: a failed, tampered or invalid download never replaces a good file.

    Parameters
    ----------
    url : str
        Source; default the Sloth repository's ``data/data_v2.csv``. ``https://`` or
        ``file://`` (a local mirror).
    sha256 : str, optional
        Expected SHA-256 (hex) of the file; None checks no hash.
    dest : str or os.PathLike, optional
        Destination file; default ``cache_dir() / "data_v2.csv"``.
    force : bool
        Download even if ``dest`` exists (otherwise an existing file whose hash matches is
        returned as is).
    timeout : float
        Seconds to wait for the server.

    Returns
    -------
    pathlib.Path
        The path of the table: fit it with ``sloth-bayes fit PATH`` or
        ``load_leaderboard(PATH)``.

    Raises
    ------
    FetchError
        If the download fails (no internet, missing file) or the hash differs.
    DataError
        If the downloaded file is not a valid table; ``dest`` is left untouched.
    """
    import pooch

    target = Path(dest).expanduser() if dest is not None else cache_dir() / PUBLISHED_FILE
    if target.is_file() and not force and (sha256 is None or file_sha256(target) == sha256.lower()):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        try:
            fetched = pooch.retrieve(
                url,
                known_hash=f"sha256:{sha256.lower()}" if sha256 else None,
                fname=target.name,
                path=staging,
                downloader=_downloader(url, timeout),
                progressbar=False,
            )
        except ValueError as err:  # pooch: the hash does not match
            raise FetchError(f"Download of {url} rejected: {err}") from err
        except OSError as err:  # no network, HTTP error (requests' errors are OSErrors), no file
            raise FetchError(f"Could not download {url} ({err}). {_LOCAL_HINT}") from err
        _validate_download(Path(fetched), url)
        os.replace(fetched, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


# --- the simulated table ---------------------------------------------------------------------
def load_simulated() -> pd.DataFrame:
    """Read the simulated leaderboard shipped with the package.

    Same design as the embedded table (LLMs, families, sizes, tokens, observed cells), scores
    drawn from the posterior predictive of a fit to it; :func:`load_simulated_parameters`
    gives the parameter values that generated them, so a fit can be checked against the
    truth. Made by ``scripts/make_simulated.py``.

    Raises
    ------
    FileNotFoundError
        If the file is missing (e.g. a source checkout before it was generated).
    """
    path = package_data_path(SIMULATED_FILE)
    if not path.is_file():
        raise FileNotFoundError(
            f"Simulated table not found at {path}. Regenerate it from the repository "
            f"root with `python scripts/make_simulated.py`."
        )
    return pd.read_csv(path)


def load_simulated_parameters() -> dict:
    """The record written beside the simulated table: parameter values (with their dims and
    coordinates, named as a fit's posterior variables), the seed and the settings used."""
    import json

    path = package_data_path(SIMULATED_PARAMETERS_FILE)
    if not path.is_file():
        raise FileNotFoundError(
            f"Simulated parameters not found at {path}. Regenerate them from the repository "
            f"root with `python scripts/make_simulated.py`."
        )
    return json.loads(path.read_text(encoding="utf-8"))
