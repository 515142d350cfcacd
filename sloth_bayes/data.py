"""Reading and validating benchmark tables (one row per LLM).

The table keeps the column names of the Sloth paper's leaderboard file: ``Model``,
``Family``, ``Family2`` (sub-family: base and chat variants are separate),
``Instruct``, ``#Params (B)``, ``Pretraining Data Size (T)`` and one column per
benchmark with accuracies in [0, 1]. Missing scores are fine (the model uses every
observed cell); missing pre-training tokens are fine (the model treats them as
latent). Validation never drops rows or changes values: it either returns the same
numbers with normalised types or raises :class:`DataError` saying what to fix.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from sloth_bayes.benchmarks import DEFAULT_BENCHMARKS, resolve_benchmarks
from sloth_bayes.utils import format_rows

__all__ = [
    "FAMILY",
    "INSTRUCT",
    "META_COLUMNS",
    "MODEL",
    "SIZE",
    "SUBFAMILY",
    "TOKENS",
    "DataError",
    "read_table",
    "rounding_step",
    "score_columns",
    "validate_queries",
    "validate_table",
]

MODEL = "Model"
FAMILY = "Family"
SUBFAMILY = "Family2"
INSTRUCT = "Instruct"
SIZE = "#Params (B)"
TOKENS = "Pretraining Data Size (T)"
META_COLUMNS: tuple[str, ...] = (MODEL, FAMILY, SUBFAMILY, INSTRUCT, SIZE, TOKENS)

_TRUE = {"true", "1"}
_FALSE = {"false", "0"}


class DataError(ValueError):
    """A table cannot be used as given; the message names the column, rows and fix."""


def score_columns(df: pd.DataFrame) -> list[str]:
    """Return the known benchmarks present as columns of ``df``.

    Parameters
    ----------
    df : pandas.DataFrame
        A wide table.

    Returns
    -------
    list of str
        The :data:`~sloth_bayes.benchmarks.DEFAULT_BENCHMARKS` found in ``df``, in
        that order (other columns, e.g. sub-tasks, are not scores to fit by default).
    """
    return [b for b in DEFAULT_BENCHMARKS if b in df.columns]


def _rows(df: pd.DataFrame, mask: pd.Series | np.ndarray) -> str:
    """Name the rows selected by ``mask`` by model name (or row label if unnamed)."""
    sub = df[np.asarray(mask, dtype=bool)]
    if MODEL in sub.columns:
        names = [m if pd.notna(m) and str(m).strip() else f"row {i}" for i, m in sub[MODEL].items()]
    else:
        names = [f"row {i}" for i in sub.index]
    return format_rows(names)


def _numeric(df: pd.DataFrame, column: str, what: str) -> pd.Series:
    """Convert ``column`` to float, raising if a non-missing entry is not a number."""
    values = pd.to_numeric(df[column], errors="coerce").astype(float)
    bad = values.isna() & df[column].notna()
    if bad.any():
        examples = format_rows(df.loc[bad, column].astype(str).unique(), limit=3)
        raise DataError(
            f"Column {column!r} ({what}) has non-numeric values ({examples}) "
            f"in rows {_rows(df, bad)}. Use plain numbers (no units), empty for missing."
        )
    return values


def _positive(df: pd.DataFrame, column: str, what: str, *, required: bool) -> pd.Series:
    """Float version of a size-like column; checks > 0, finite, and presence if required."""
    values = _numeric(df, column, what)
    if required and values.isna().any():
        missing = values.isna()
        raise DataError(
            f"Column {column!r} ({what}) is missing in rows {_rows(df, missing)}. "
            f"Fill it in (model size is required) or drop those rows."
        )
    bad = values.notna() & ~(np.isfinite(values) & (values > 0))
    if bad.any():
        raise DataError(
            f"Column {column!r} ({what}) must be positive and finite; rows {_rows(df, bad)} "
            f"have {format_rows(values[bad].unique(), limit=3)}. Fix the values"
            + (" or leave them empty (missing tokens are estimated)." if not required else ".")
        )
    return values


def _instruct(df: pd.DataFrame) -> pd.Series:
    """Interpret ``Instruct`` as bool: True/False, 1/0 or 'true'/'false' (any case)."""

    def parse(value: object) -> bool | None:
        if isinstance(value, bool | np.bool_):
            return bool(value)
        if isinstance(value, int | float | np.integer | np.floating) and value in (0, 1):
            return bool(value)
        if isinstance(value, str):
            text = value.strip().lower()
            if text in _TRUE:
                return True
            if text in _FALSE:
                return False
        return None

    parsed = df[INSTRUCT].map(parse)
    bad = parsed.isna()
    if bad.any():
        examples = format_rows(df.loc[bad, INSTRUCT].astype(str).unique(), limit=3)
        raise DataError(
            f"Column {INSTRUCT!r} must be True/False (or 1/0, 'true'/'false'); rows "
            f"{_rows(df, bad)} have {examples}. Mark instruction/chat-tuned models True."
        )
    return parsed.astype(bool)


def _check_meta(df: pd.DataFrame, what: str) -> pd.DataFrame:
    """Shared checks of the descriptive columns; returns a copy with normalised types."""
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"Expected a pandas DataFrame, got {type(df).__name__}.")
    if len(df) == 0:
        raise DataError(f"The {what} table is empty (no rows): give at least one LLM.")

    hints = {
        SUBFAMILY: (
            f"{SUBFAMILY!r} (sub-family with its own intercepts; if you have none, copy "
            f"{FAMILY!r}: df[{SUBFAMILY!r}] = df[{FAMILY!r}]"
            + (", or give a new name for an unseen sub-family)" if what == "query" else ")")
        ),
        MODEL: f"{MODEL!r} (unique LLM name)",
        FAMILY: f"{FAMILY!r} (model family, e.g. 'llama-2')",
        INSTRUCT: f"{INSTRUCT!r} (True for instruction-/chat-tuned models)",
        SIZE: f"{SIZE!r} (parameters, billions)",
    }
    required = (MODEL, FAMILY, SUBFAMILY, INSTRUCT, SIZE)
    missing = [c for c in required if c not in df.columns]
    if missing:
        listed = "; ".join(hints[c] for c in missing)
        raise DataError(
            f"The {what} table lacks required column(s): {listed}. Add them (names are "
            f"case-sensitive; columns present: {format_rows(df.columns, limit=8)})."
        )

    for column in (MODEL, FAMILY, SUBFAMILY):
        empty = df[column].isna() | (df[column].astype(str).str.strip() == "")
        if empty.any():
            raise DataError(
                f"Column {column!r} is empty in rows {_rows(df, empty)}. Every LLM needs a "
                f"model name, a family and a sub-family."
            )
    dup = df[MODEL].duplicated(keep=False)
    if dup.any():
        raise DataError(
            f"Column {MODEL!r} has duplicate model names: {format_rows(df.loc[dup, MODEL].unique())}. "
            f"Each row must be a distinct LLM; rename or remove the repeats."
        )

    out = df.copy()
    out[INSTRUCT] = _instruct(df)
    out[SIZE] = _positive(df, SIZE, "parameters, billions", required=True)
    if TOKENS in df.columns:
        out[TOKENS] = _positive(df, TOKENS, "pre-training tokens, trillions", required=False)
    else:
        out[TOKENS] = np.nan
    return out


def _check_scores(df: pd.DataFrame, column: str) -> pd.Series:
    """Float scores in [0, 1] (NaN = not evaluated), with a hint for percent tables."""
    values = _numeric(df, column, "benchmark accuracy")
    observed = values.dropna()
    outside = values.notna() & ~values.between(0, 1)
    if outside.any():
        if observed.max() > 1 and observed.between(0, 100).all():
            raise DataError(
                f"Column {column!r} looks like percent (max {observed.max():g}; e.g. rows "
                f"{_rows(df, values > 1)}): divide by 100 so accuracies are in [0, 1]."
            )
        raise DataError(
            f"Column {column!r} has accuracies outside [0, 1] in rows {_rows(df, outside)} "
            f"({format_rows(values[outside].unique(), limit=3)}). Accuracies must be "
            f"fractions in [0, 1]; leave a cell empty if the score is unknown."
        )
    return values


#: Rounding steps recognised in a score column, coarsest first (whole and tenth percent).
ROUNDING_STEPS = (0.01, 0.001)


def rounding_step(scores: pd.Series | np.ndarray, min_scores: int = 5) -> float:
    """The step a benchmark's recorded scores were rounded to: the coarsest of
    :data:`ROUNDING_STEPS` that every observed score is a multiple of (the leaderboard's v2
    columns are whole percents: MATH Lvl 5 reads 0.00, 0.01, 0.02 for most small models), or
    0 for exact scores, or when fewer than ``min_scores`` scores leave the step in doubt."""
    x = np.asarray(scores, dtype=float)
    x = x[np.isfinite(x)]
    if len(x) < min_scores:
        return 0.0
    for step in ROUNDING_STEPS:
        if np.allclose(x / step, np.round(x / step), rtol=0.0, atol=1e-6):
            return step
    return 0.0


def validate_table(
    df: pd.DataFrame,
    benchmarks: Sequence[str] | None = None,
    *,
    floors: Mapping[str, float] | None = None,
    n_items: Mapping[str, int] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Check a training table and return a clean copy plus benchmark metadata.

    Parameters
    ----------
    df : pandas.DataFrame
        One row per LLM with :data:`META_COLUMNS` (``Pretraining Data Size (T)`` may
        be absent or partly missing) and one column per benchmark.
    benchmarks : sequence of str, optional
        Benchmark columns to fit. Default: the known benchmarks present in ``df``
        (:func:`score_columns`).
    floors, n_items : mapping, optional
        Floors / item counts overriding or adding to the built-in ones
        (see :func:`~sloth_bayes.benchmarks.resolve_benchmarks`).

    Returns
    -------
    table : pandas.DataFrame
        Copy of ``df`` restricted to :data:`META_COLUMNS` + ``benchmarks`` (in that
        order, same index and rows). Values are those of ``df``; only types are
        normalised: ``Instruct`` bool; size, tokens and scores float (a missing
        tokens column is added as NaN).
    meta : pandas.DataFrame
        Benchmark metadata indexed by ``benchmarks`` (``floor``, ``n_items``,
        ``leaderboard``).

    Raises
    ------
    DataError
        If the table is empty; lacks a required column or a requested benchmark;
        has duplicate or empty model names, empty families, missing or non-positive
        sizes, non-positive tokens, an uninterpretable ``Instruct``, non-numeric
        scores, scores outside [0, 1] (percent tables get a specific hint), a
        benchmark without a known floor, or no observed score at all.
    """
    out = _check_meta(df, "training")
    if benchmarks is None:
        benchmarks = score_columns(df)
        if not benchmarks:
            raise DataError(
                f"No benchmark columns found: the table has none of {', '.join(DEFAULT_BENCHMARKS)}. "
                f"Pass benchmarks=[...] (and floors={{...}} for new ones) to choose score columns."
            )
    benchmarks = list(benchmarks)
    if not benchmarks:
        raise DataError("benchmarks is empty: give at least one benchmark column to fit.")
    absent = [b for b in benchmarks if b not in df.columns]
    if absent:
        raise DataError(
            f"Requested benchmark column(s) {format_rows(absent)} not in the table. "
            f"Check spelling; score columns present: {', '.join(score_columns(df)) or 'none'}."
        )
    meta = resolve_benchmarks(benchmarks, floors=floors, n_items=n_items)
    for column in benchmarks:
        out[column] = _check_scores(df, column)
    if out[benchmarks].notna().to_numpy().sum() == 0:
        raise DataError(
            f"No observed scores in benchmark columns {format_rows(benchmarks)}: all {len(df)} "
            f"rows are empty there. Fill in some scores or choose other benchmarks."
        )
    return out[list(META_COLUMNS) + benchmarks], meta


def validate_queries(df: pd.DataFrame) -> pd.DataFrame:
    """Check a table of LLMs to forecast and return its descriptive columns.

    Queries need ``Model``, ``Family``, ``Family2`` (may be a sub-family not seen in
    training), ``Instruct`` and ``#Params (B)``; ``Pretraining Data Size (T)`` is
    optional (missing values are estimated). Score columns and any other columns
    are not used for forecasting and are dropped from the returned frame: pass the
    table itself if you want to compare forecasts with known scores.

    Parameters
    ----------
    df : pandas.DataFrame
        One row per query LLM.

    Returns
    -------
    pandas.DataFrame
        Copy with exactly :data:`META_COLUMNS`, same rows and index; ``Instruct``
        bool, size and tokens float.

    Raises
    ------
    DataError
        If the table is empty, lacks a required column, or has duplicate or empty
        names, empty families, missing or non-positive sizes, non-positive tokens or
        an uninterpretable ``Instruct``.
    """
    return _check_meta(df, "query")[list(META_COLUMNS)]


def read_table(
    path: str | os.PathLike[str],
    benchmarks: Sequence[str] | None = None,
    *,
    floors: Mapping[str, float] | None = None,
    n_items: Mapping[str, int] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read a CSV training table and validate it with :func:`validate_table`.

    Parameters
    ----------
    path : str or os.PathLike
        CSV file with one row per LLM.
    benchmarks, floors, n_items
        As in :func:`validate_table`.

    Returns
    -------
    table, meta : pandas.DataFrame
        As in :func:`validate_table`.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    DataError
        If the table fails validation.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No table at {os.fspath(path)!r}: check the path.")
    return validate_table(pd.read_csv(path), benchmarks, floors=floors, n_items=n_items)
