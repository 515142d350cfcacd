"""Small helpers shared by the package: atomic file writes and row lists for messages."""

from __future__ import annotations

import operator
import os
import secrets
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from importlib import resources
from pathlib import Path
from typing import IO, Any

from sloth_bayes.errors import UsageError

__all__ = ["SEED_LIMIT", "atomic_path", "atomic_write", "check_seed", "format_rows", "package_data_path"]

SEED_LIMIT = 2**32
"""Seeds are integers in ``[0, SEED_LIMIT)``: each gives its own posterior (no aliasing)."""


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; move it onto ``path`` on success.

    For writers that need a file name rather than a file object (e.g. netCDF via
    ``xarray.Dataset.to_netcdf``). The temporary file lives in the same folder so
    that :func:`os.replace` is atomic: a reader never sees a half-written file, and
    an interrupted write leaves any previous file untouched.

    Parameters
    ----------
    path : str or os.PathLike
        Final destination. Its folder must exist.

    Yields
    ------
    pathlib.Path
        Temporary path to write to. It is flushed to disk (fsync) before the rename, and
        removed if the block raises or is interrupted (Ctrl-C, SIGTERM).
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, path)
    except BaseException:  # KeyboardInterrupt and SystemExit (SIGTERM) included
        with suppress(OSError):
            tmp.unlink()
        raise
    _fsync(path.parent, directory=True)


def _fsync(path: Path, *, directory: bool = False) -> None:
    """Flush a written file (or a folder's entries, after a rename) to disk."""
    if directory and os.name == "nt":  # folders cannot be opened on Windows
        return
    try:
        fd = os.open(path, os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0))
    except OSError:
        if directory:  # some file systems refuse; the rename itself has happened
            return
        raise
    try:
        os.fsync(fd)
    except OSError:
        if not directory:
            raise
    finally:
        os.close(fd)


@contextmanager
def atomic_write(
    path: str | os.PathLike[str], mode: str = "w", *, encoding: str = "utf-8"
) -> Iterator[IO[Any]]:
    """Open a temporary file for writing and atomically replace ``path`` on success.

    The data are flushed and fsync'ed before :func:`os.replace`, so after the
    ``with`` block the file is complete on disk; if the block raises, the
    temporary file is removed and ``path`` keeps its previous content.

    Parameters
    ----------
    path : str or os.PathLike
        Final destination. Its folder must exist.
    mode : {"w", "wb"}
        Text or binary mode.
    encoding : str
        Encoding in text mode (ignored in binary mode).

    Yields
    ------
    file object
        Open file to write to.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "x.txt"
    >>> with atomic_write(out) as f:
    ...     _ = f.write("hello")
    >>> out.read_text()
    'hello'
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"mode must be 'w' or 'wb', got {mode!r}")
    with atomic_path(path) as tmp:
        # os.open with 0o666 lets the umask decide permissions, as open() would.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, mode, encoding=None if mode == "wb" else encoding) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())


def check_seed(seed, name: str = "seed") -> int:
    """Return ``seed`` as an int, refusing values outside ``[0, 2**32)``.

    JAX keys hold 32 bits: larger or negative seeds would be cut and two different seeds
    would give the same posterior, so they are refused rather than silently aliased.

    >>> check_seed(7)
    7
    >>> check_seed(-1)
    Traceback (most recent call last):
    ...
    sloth_bayes.errors.UsageError: seed -1 is out of range: use an integer from 0 to 4294967295.
    """
    try:
        value = operator.index(seed)  # ints and NumPy integers; not floats, not bools' text
    except TypeError:
        value = None
    if value is None or isinstance(seed, bool):
        raise UsageError(f"{name} {seed!r} is not an integer: use an integer from 0 to {SEED_LIMIT - 1}.")
    if not 0 <= value < SEED_LIMIT:
        raise UsageError(f"{name} {value} is out of range: use an integer from 0 to {SEED_LIMIT - 1}.")
    return value


def format_rows(names: Iterable[object], limit: int = 5) -> str:
    """Join names for an error message, truncated after ``limit`` entries.

    Parameters
    ----------
    names : iterable
        Names (e.g. model names) of offending rows.
    limit : int
        How many names to show before summarising the rest.

    Returns
    -------
    str
        E.g. ``"a, b, c, and 4 more"``.

    Examples
    --------
    >>> format_rows(list("abcdefg"), limit=3)
    'a, b, c, and 4 more'
    >>> format_rows(["x", "y"])
    'x, y'
    """
    names = [str(n) for n in names]
    if len(names) <= limit:
        return ", ".join(names)
    return ", ".join(names[:limit]) + f", and {len(names) - limit} more"


def package_data_path(name: str) -> Path:
    """Locate a data file shipped with the package.

    A wheel carries the files under ``sloth_bayes/_data/``; an editable install or
    a source checkout reads them from the repository's top-level ``data/`` folder.

    Parameters
    ----------
    name : str
        File name, e.g. ``"benchmarks.csv"``.

    Returns
    -------
    pathlib.Path
        The installed copy if present, else ``<repo>/data/<name>`` (which may not
        exist; callers decide how to report that).
    """
    try:
        resource = resources.files("sloth_bayes").joinpath("_data", name)
        if resource.is_file():
            return Path(str(resource))
    except (ModuleNotFoundError, FileNotFoundError, NotADirectoryError):
        pass
    return Path(__file__).resolve().parent.parent / "data" / name
