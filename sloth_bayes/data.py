"""Reading and validating benchmark tables (one row per LLM).

The table keeps the column names of the Sloth paper's leaderboard file: ``Model``,
``Family``, ``Family2`` (sub-family: base and chat variants are separate),
``Instruct``, ``#Params (B)``, ``Pretraining Data Size (T)`` and one column per
benchmark with accuracies in [0, 1]. Missing scores are fine (the model uses every
observed cell); missing pre-training tokens are fine (the model treats them as
latent). Validation never drops rows or changes numbers: it returns the same values with
normalised types (names without surrounding whitespace) or raises :class:`DataError`
saying what to fix. The one change it makes is announced: a benchmark column chosen by
default that holds no score at all is left out with a :class:`DataWarning`.
"""

from __future__ import annotations

import csv
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from sloth_bayes.benchmarks import DEFAULT_BENCHMARKS, resolve_benchmarks
from sloth_bayes.errors import DataError, DataWarning, ExtrapolationWarning
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
    "DataWarning",
    "EXTRAPOLATION_FACTOR",
    "MIN_LLMS",
    "check_fittable",
    "check_queries_against",
    "read_csv",
    "read_table",
    "rounding_step",
    "score_columns",
    "training_summary",
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

MIN_LLMS = 3
"""Fewest LLMs with at least one score that a fit accepts (a scaling law needs several)."""

EXTRAPOLATION_FACTOR = 10.0
"""A query whose size or token count is this many times beyond the range of the training
table (above its largest or below its smallest) is flagged by :func:`check_queries_against`."""

#: Largest plausible values of the "(B)" and "(T)" columns: above, they are raw counts.
SIZE_MAX_B = 1e5
TOKENS_MAX_T = 1e3


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
    df = df.copy()
    for column in (MODEL, FAMILY, SUBFAMILY):  # " gemma-7b " and "gemma-7b" are one name
        df[column] = df[column].map(lambda v: v.strip() if isinstance(v, str) else v)
    dup = df[MODEL].duplicated(keep=False)
    if dup.any():
        raise DataError(
            f"Column {MODEL!r} has duplicate model names: {format_rows(df.loc[dup, MODEL].unique())} "
            f"(spaces around names do not count). Each row must be a distinct LLM; rename or "
            f"remove the repeats."
        )
    for column in (MODEL, FAMILY, SUBFAMILY):
        _check_case_clash(df, column)
    _check_subfamilies(df, what)

    out = df.copy()
    out[INSTRUCT] = _instruct(df)
    out[SIZE] = _positive(df, SIZE, "parameters, billions", required=True)
    _check_units(df, out[SIZE], SIZE, SIZE_MAX_B, "a parameter count in billions",
                 "raw parameter counts: divide by 1e9; millions: divide by 1000")
    if TOKENS in df.columns:
        out[TOKENS] = _positive(df, TOKENS, "pre-training tokens, trillions", required=False)
        _check_units(df, out[TOKENS], TOKENS, TOKENS_MAX_T, "a token count in trillions",
                     "raw token counts: divide by 1e12; billions: divide by 1000")
    else:
        out[TOKENS] = np.nan
    return out


_NOUN = {MODEL: "LLMs", FAMILY: "families", SUBFAMILY: "sub-families"}


def _check_case_clash(df: pd.DataFrame, column: str) -> None:
    """Names are case-sensitive, so two spellings that differ only in case are refused."""
    names = pd.Series(pd.unique(df[column].astype(str)))
    clash = names[names.str.lower().duplicated(keep=False)]
    if len(clash):
        groups = clash.groupby(clash.str.lower(), sort=False).agg(list)
        shown = "; ".join(" vs ".join(repr(n) for n in g) for g in groups)
        raise DataError(
            f"Column {column!r} has names that differ only in case: {shown}. Names are "
            f"case-sensitive, so these would count as different {_NOUN[column]}: use one spelling."
        )


def _check_subfamilies(df: pd.DataFrame, what: str) -> None:
    """Every row of a sub-family (``Family2``) must name the same ``Family``."""
    fams = df.groupby(df[SUBFAMILY].astype(str), sort=False)[FAMILY].agg(lambda s: list(pd.unique(s.astype(str))))
    mixed = fams[fams.map(len) > 1]
    if not len(mixed):
        return
    parts = []
    for sub, families in mixed.items():
        rows = df[SUBFAMILY].astype(str) == sub
        listed = ", ".join(
            f"{fam!r} in rows {_rows(df, rows & (df[FAMILY].astype(str) == fam))}" for fam in families
        )
        parts.append(f"sub-family {sub!r} has {listed}")
    raise DataError(
        f"In the {what} table, {'; '.join(parts)}. A sub-family ({SUBFAMILY!r}) belongs to one "
        f"family ({FAMILY!r}): correct {FAMILY!r} in those rows, or give them another {SUBFAMILY!r}."
    )


def _check_units(df: pd.DataFrame, values: pd.Series, column: str, limit: float, unit: str, fix: str):
    """Refuse values no LLM has (e.g. 7e9 in a column in billions): they are raw counts."""
    big = values > limit
    if big.any():
        raise DataError(
            f"Column {column!r} has {format_rows((f'{v:g}' for v in values[big].unique()), limit=3)} in rows "
            f"{_rows(df, big)}: above {limit:g}, not {unit}. Convert the column ({fix})."
        )


def _check_scores(df: pd.DataFrame, column: str) -> pd.Series:
    """Float scores in [0, 1] (NaN = not evaluated). A column is called percent only when
    it is: every score in [0, 100] and most above 1; a few stray cells are named as such."""
    values = _numeric(df, column, "benchmark accuracy")
    observed = values.dropna()
    outside = values.notna() & ~values.between(0, 1)
    if not outside.any():
        return values
    if observed.between(0, 100).all() and (observed > 1).mean() >= 0.5:
        raise DataError(
            f"Column {column!r} looks like percent ({(observed > 1).sum()} of {len(observed)} "
            f"scores above 1, max {observed.max():g}; rows {_rows(df, values > 1)}): divide by 100 "
            f"every score of the column so accuracies are in [0, 1]."
        )
    if outside.sum() == 1:
        raise DataError(
            f"Column {column!r} has one accuracy outside [0, 1]: {values[outside].iloc[0]:g} in row "
            f"{_rows(df, outside)}. Accuracies are fractions in [0, 1]: correct that cell, or "
            f"leave it empty if the score is unknown."
        )
    hint = (
        " (only if the whole column is in percent, divide all of it by 100)"
        if observed.between(0, 100).all() else ""
    )
    raise DataError(
        f"Column {column!r} has {outside.sum()} accuracies outside [0, 1] among "
        f"{len(observed)} scores: rows {_rows(df, outside)} "
        f"({format_rows(values[outside].unique(), limit=3)}). Accuracies are fractions in "
        f"[0, 1]: correct those cells, or leave them empty if unknown{hint}."
    )


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
        tokens column is added as NaN); names lose surrounding whitespace. When
        ``benchmarks`` is not given, a known benchmark column without any score is
        left out with a :class:`DataWarning`.
    meta : pandas.DataFrame
        Benchmark metadata indexed by ``benchmarks`` (``floor``, ``n_items``,
        ``leaderboard``).

    Raises
    ------
    DataError
        If the table is empty; lacks a required column or a requested benchmark;
        has duplicate or empty model names, names that differ only in case, a
        sub-family split across families, missing or non-positive sizes, sizes or
        tokens that are raw counts rather than billions / trillions, an
        uninterpretable ``Instruct``, non-numeric scores, scores outside [0, 1]
        (percent columns get a specific hint), a benchmark without a known floor,
        or no observed score at all.
    """
    out = _check_meta(df, "training")
    chosen = benchmarks is None
    if chosen:
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
    for column in benchmarks:
        out[column] = _check_scores(df, column)
    if out[benchmarks].notna().to_numpy().sum() == 0:
        raise DataError(
            f"No observed scores in benchmark columns {format_rows(benchmarks)}: all {len(df)} "
            f"rows are empty there. Fill in some scores or choose other benchmarks."
        )
    empty = [b for b in benchmarks if out[b].isna().all()]
    if empty and chosen:  # a forecast of such a benchmark would come from the prior alone
        warnings.warn(
            f"benchmark column(s) {format_rows(empty)} have no score in any row and are left "
            f"out of the fit; fill in scores to fit them.",
            DataWarning,
            stacklevel=2,
        )
        benchmarks = [b for b in benchmarks if b not in empty]
    meta = resolve_benchmarks(benchmarks, floors=floors, n_items=n_items)
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
    return validate_table(read_csv(path), benchmarks, floors=floors, n_items=n_items)


def read_csv(path: str | os.PathLike[str], what: str = "table") -> pd.DataFrame:
    """Read a comma-separated UTF-8 file, or raise :class:`DataError` saying what to fix.

    Empty files, other encodings, other separators, rows with more fields than the header
    and repeated column names each get a one-line message. Column names lose surrounding
    whitespace; values are read as :func:`pandas.read_csv` reads them.

    Parameters
    ----------
    path : str or os.PathLike
        The file.
    what : str
        What the file is, for messages (``"table"``, ``"query table"``...).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    DataError
        If it exists but cannot be read as a CSV table.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"No {what} at {str(path)!r}: check the path.")
    if path.is_dir():
        raise DataError(f"{path} is a folder; give the CSV file of the {what}.")
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            header = next(csv.reader(fh), [])
        with warnings.catch_warnings():
            # index_col=False: a first data row with one field too many is an error, not an
            # index column that silently shifts every value one column to the right
            warnings.simplefilter("error", pd.errors.ParserWarning)
            df = pd.read_csv(path, encoding="utf-8-sig", index_col=False)
    except pd.errors.EmptyDataError:
        raise DataError(
            f"{path} is empty: a {what} needs a header line ({MODEL},{FAMILY},...) and one line per LLM."
        ) from None
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path} is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start}): "
            f"save it as a comma-separated UTF-8 CSV (spreadsheets: 'CSV UTF-8'; not .xlsx)."
        ) from None
    except (pd.errors.ParserError, pd.errors.ParserWarning) as exc:
        raise DataError(
            f"{path}: {_separator(header) or _ragged(path) or str(exc).strip().splitlines()[-1]}."
        ) from None
    except PermissionError:
        raise DataError(f"{path} cannot be read (permission denied): check its permissions.") from None
    hint = _separator(header)
    if hint:
        raise DataError(f"{path}: {hint}.")
    names = [n.strip() for n in header]
    repeated = sorted({n for n in names if names.count(n) > 1 and n})
    if repeated:
        raise DataError(
            f"{path}: column(s) {format_rows(repr(n) for n in repeated)} appear more than once in "
            f"the header; keep one of each (names are compared without surrounding spaces)."
        )
    return df.rename(columns=lambda c: c.strip() if isinstance(c, str) else c)


def _separator(header: list[str]) -> str | None:
    """A header read as one field that holds another separator: the file is not comma-separated."""
    if len(header) == 1:
        for sep, name in ((";", "semicolons"), ("\t", "tabs"), ("|", "bars")):
            if sep in header[0]:
                return (
                    f"the header is separated by {name}, not commas: save the file as comma-separated "
                    f"CSV with '.' as the decimal point (or read it with pandas.read_csv(path, sep={sep!r}) "
                    f"and pass the table)"
                )
    return None


def _ragged(path: Path) -> str | None:
    """Where a CSV file has a line with more fields than its header, and the fix."""
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        header = next(reader, [])
        for row in reader:
            if len(row) > len(header):
                return (
                    f"line {reader.line_num} has {len(row)} fields but the header has {len(header)}; "
                    f'quote values that contain commas ("a, b") or remove the extra fields'
                )
    return None


def check_fittable(table: pd.DataFrame, meta: pd.DataFrame, n_skills: int) -> None:
    """Refuse a validated table that cannot be fitted with ``n_skills`` skills.

    Parameters
    ----------
    table, meta : pandas.DataFrame
        As returned by :func:`validate_table`.
    n_skills : int
        Number of latent skills K.

    Raises
    ------
    DataError
        If fewer than :data:`MIN_LLMS` LLMs have a score, or K is not in
        [1, number of benchmarks].
    """
    benchmarks = list(meta.index)
    scored = int(table[benchmarks].notna().any(axis=1).sum())
    if scored < MIN_LLMS:
        raise DataError(
            f"The table has {scored} LLM{'s' if scored != 1 else ''} with a score; a fit needs at "
            f"least {MIN_LLMS} (the scaling law is learned across sizes and families): add LLMs."
        )
    j = len(benchmarks)
    if isinstance(n_skills, bool) or not isinstance(n_skills, int | np.integer) or not 1 <= n_skills <= j:
        fix = f"use --skills {j} or fewer (ModelConfig(n_skills={j}))" if j >= 1 else "add benchmarks"
        raise DataError(
            f"{n_skills} skills cannot be fitted to {j} benchmark{'s' if j != 1 else ''} "
            f"({format_rows(benchmarks)}): the number of skills must be from 1 to the number of "
            f"benchmarks; {fix}, or add benchmarks."
        )


def training_summary(table: pd.DataFrame) -> dict:
    """What forecasts are checked against: sub-family -> family, and the lowest and highest
    size and token count of a validated training table (JSON-ready)."""

    def span(column: str):
        values = table[column].dropna()
        return [float(values.min()), float(values.max())] if len(values) else None

    families = table.groupby(table[SUBFAMILY].astype(str), sort=False)[FAMILY].first().astype(str)
    return {"families": families.to_dict(), "size": span(SIZE), "tokens": span(TOKENS)}


def check_queries_against(
    queries: pd.DataFrame, training: Mapping, factor: float = EXTRAPOLATION_FACTOR
) -> None:
    """Check validated queries against what a fit has seen (:func:`training_summary`).

    A query whose ``Family2`` is a known sub-family must name that sub-family's family, and
    a new name that differs from a known one only in case is refused (both are typos that
    would silently change the forecast). A size or token count more than ``factor`` times
    beyond the training range gets an :class:`~sloth_bayes.errors.ExtrapolationWarning`.

    Raises
    ------
    DataError
        On a family that contradicts the known sub-family, or a case-only clash.
    """
    families = dict(training.get("families") or {})
    subs, fams = queries[SUBFAMILY].astype(str), queries[FAMILY].astype(str)
    known = subs.isin(list(families))
    wrong = known & (fams != subs.map(families))
    if wrong.any():
        first = wrong.idxmax()
        raise DataError(
            f"Query rows {_rows(queries, wrong)} give {FAMILY} {fams[first]!r} for sub-family "
            f"{subs[first]!r}, which the fit knows in family {families[subs[first]]!r}. Correct "
            f"{FAMILY!r}, or give a new {SUBFAMILY!r} name to forecast a new sub-family."
        )
    for column, names, values in (
        (SUBFAMILY, list(families), subs),
        (FAMILY, sorted(set(families.values())), fams),
    ):
        lower = {n.lower(): n for n in names}
        clash = [v for v in pd.unique(values) if v not in names and v.lower() in lower]
        if clash:
            shown = ", ".join(f"{v!r} (the fit has {lower[v.lower()]!r})" for v in clash)
            raise DataError(
                f"Query {column!r} names differ from the fit's only in case: {shown}. Names are "
                f"case-sensitive: use the fit's spelling, or a clearly new name for a new one."
            )
    for column, key, unit in ((SIZE, "size", "B"), (TOKENS, "tokens", "T")):
        span = training.get(key)
        if not span:
            continue
        low, high = span
        for name, v in zip(queries[MODEL].astype(str), queries[column]):
            if not np.isfinite(v):
                continue
            ratio, side, edge = (v / high, "above the largest", high) if v > high else (low / v, "below the smallest", low)
            if ratio > factor:
                warnings.warn(
                    f"query {name!r}: {column} = {v:g} is {ratio:.3g} times {side} value the fit "
                    f"has seen ({edge:g} {unit}); its forecast extrapolates the fitted law far "
                    f"beyond the data (flagged beyond {factor:g} times).",
                    ExtrapolationWarning,
                    stacklevel=2,
                )
