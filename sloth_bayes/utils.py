"""Small helpers shared by the package: atomic file writes and row lists for messages."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from importlib import resources
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_path", "atomic_write", "format_rows", "package_data_path"]


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
        Temporary path to write to. It is removed if the block raises.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with suppress(FileNotFoundError):
            tmp.unlink()
        raise


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
