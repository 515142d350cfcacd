"""First-release months of sub-families: who is newer than a cut-off.

The package ships an approximate first-release month (``YYYY-MM``) for each sub-family
(``Family2``) of the public leaderboard table, ``sloth_bayes/family_release.csv``
(:func:`release_table`). A user's table may carry its own ``Release`` column instead (any
date pandas reads; the earliest of a sub-family's rows counts), and a mapping or file given
explicitly replaces both. Only the ``future`` backtest protocol needs dates; a sub-family
with none is *unknown*, never *old*.

>>> release_months(table)["qwen1.5"]                       # doctest: +SKIP
'2024-02'
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources

import pandas as pd

from .data import SUBFAMILY

__all__ = ["RELEASE", "RELEASE_FILE", "release_months", "release_table"]

#: Optional column of a user's table: the LLM's (or its sub-family's) release date.
RELEASE = "Release"
#: Package data file with the public table's sub-family release months.
RELEASE_FILE = "family_release.csv"


def _month(values) -> pd.Series:
    """``YYYY-MM`` strings (NaN where unreadable) from dates, months or strings."""
    s = pd.Series(values)
    out = pd.to_datetime(s.astype("string"), errors="coerce", format="mixed")
    return out.dt.strftime("%Y-%m").where(out.notna())


def release_table() -> pd.Series:
    """The shipped release months: a Series ``Family2 -> "YYYY-MM"``."""
    with resources.files("sloth_bayes").joinpath(RELEASE_FILE).open("r", encoding="utf-8") as fh:
        df = pd.read_csv(fh, dtype=str)
    return pd.Series(_month(df["release"]).to_numpy(), index=df[SUBFAMILY].astype(str).to_numpy(),
                     name="release")


def release_months(table: pd.DataFrame | None = None, release=None) -> pd.Series:
    """First-release month (``"YYYY-MM"``) of each sub-family, as a Series indexed by
    ``Family2``.

    Parameters
    ----------
    table : a wide table; its ``Release`` column, when present, gives each sub-family the
        earliest date of its rows (rows without one count as missing).
    release : a mapping or Series ``Family2 -> date``, or a path to a CSV with columns
        ``Family2, release``: the only source when given. ``None``: the table's column where
        it has a date, else the shipped :func:`release_table`.

    Returns
    -------
    Series of ``"YYYY-MM"`` strings; sub-families of ``table`` without any date are NaN.
    """
    if release is not None:
        if isinstance(release, Mapping | pd.Series):
            given = pd.Series(dict(release)) if isinstance(release, Mapping) else release
        else:
            df = pd.read_csv(release, dtype=str)
            given = pd.Series(df["release"].to_numpy(), index=df[SUBFAMILY].astype(str).to_numpy())
        out = pd.Series(_month(given).to_numpy(), index=given.index.astype(str), name="release")
    else:
        out = release_table()
        if table is not None and RELEASE in table.columns:
            own = pd.Series(_month(table[RELEASE]).to_numpy(), index=table[SUBFAMILY].astype(str).to_numpy())
            own = own.dropna().groupby(level=0).min()
            out = own.combine_first(out)
    if table is not None:
        subs = pd.unique(table[SUBFAMILY].astype(str))
        out = out.reindex(pd.Index(subs).union(out.index, sort=False))
    return out.rename("release")
