"""Benchmark metadata: chance-level floors, test-set sizes, leaderboard version.

The floors are the lower asymptotes of the scaling law (a model guessing at random
scores the floor); the item counts set the binomial measurement noise of a score.
Values live in ``data/benchmarks.csv`` with a short source for each number.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from functools import cache

import pandas as pd

from sloth_bayes.utils import format_rows, package_data_path

__all__ = [
    "DEFAULT_BENCHMARKS",
    "V1_BENCHMARKS",
    "V2_BENCHMARKS",
    "benchmark_table",
    "resolve_benchmarks",
]

V1_BENCHMARKS: tuple[str, ...] = (
    "MMLU",
    "ARC",
    "HellaSwag",
    "Winogrande",
    "TruthfulQA",
    "GSM8K",
)
"""Open LLM Leaderboard v1 benchmarks, in the order used throughout the package."""

V2_BENCHMARKS: tuple[str, ...] = ("IFEval", "BBH", "MATH Lvl 5", "GPQA", "MUSR", "MMLU-PRO")
"""Open LLM Leaderboard v2 benchmarks."""

DEFAULT_BENCHMARKS: tuple[str, ...] = V1_BENCHMARKS + V2_BENCHMARKS
"""All twelve benchmarks of the Sloth table (v1 then v2)."""

BENCHMARKS_FILE = "benchmarks.csv"


def _is_number(value: object) -> bool:
    """True for finite real numbers (numpy scalars included), False for bools and the rest."""
    return (
        isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    )


@cache
def _read_table() -> pd.DataFrame:
    path = package_data_path(BENCHMARKS_FILE)
    table = pd.read_csv(path, index_col="benchmark")
    return table.astype({"floor": float, "n_items": float})


def benchmark_table() -> pd.DataFrame:
    """Return the metadata of the known benchmarks.

    Returns
    -------
    pandas.DataFrame
        Indexed by benchmark name, columns ``floor`` (chance-level accuracy, float),
        ``n_items`` (test items on the Open LLM Leaderboard, float), ``leaderboard``
        (``"v1"`` or ``"v2"``), ``answer`` (how an answer is scored: ``"choice"``, one of
        several options, where a model that knows nothing can beat 1/#choices by its
        biases; ``"rules"``, IFEval's checks of instructions, some met by any text;
        ``"exact"``, a free-form answer that must match, where nothing can be guessed and 0
        is the floor) and ``source`` (where the numbers come from).
        A fresh copy: editing it does not affect the package.

    Examples
    --------
    >>> benchmark_table().loc["MMLU", "floor"]
    np.float64(0.25)
    """
    return _read_table().copy()


def resolve_benchmarks(
    names: Sequence[str],
    floors: Mapping[str, float] | None = None,
    n_items: Mapping[str, int] | None = None,
) -> pd.DataFrame:
    """Look up floors and item counts for the benchmarks to fit.

    Parameters
    ----------
    names : sequence of str
        Benchmark (column) names, in the order wanted.
    floors : mapping, optional
        Chance-level floors in [0, 1) that override the built-in ones or supply them
        for benchmarks the package does not know. Keys not in ``names`` are ignored.
    n_items : mapping, optional
        Number of test items per benchmark (positive), overriding or adding to the
        built-in ones. Unknown counts stay NaN. Keys not in ``names`` are ignored.

    Returns
    -------
    pandas.DataFrame
        Index ``names`` (in the given order, named ``benchmark``); columns ``floor``
        (float), ``n_items`` (float, NaN when unknown) and ``leaderboard``
        (``"v1"``, ``"v2"`` or ``"user"`` for benchmarks the package does not know).

    Raises
    ------
    DataError
        If a benchmark has no known floor, a floor is outside [0, 1), an item count
        is not positive, or a name is repeated.

    Examples
    --------
    >>> resolve_benchmarks(["GSM8K", "MyQA"], floors={"MyQA": 0.2})["floor"].tolist()
    [0.0, 0.2]
    """
    from sloth_bayes.data import DataError  # data imports this module

    names = [str(n) for n in names]
    floors = dict(floors or {})
    n_items = dict(n_items or {})
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise DataError(f"Benchmarks listed more than once: {format_rows(repeated)}. List each once.")

    bad_floor = [k for k, v in floors.items() if not (_is_number(v) and 0 <= v < 1)]
    if bad_floor:
        shown = format_rows(f"{k}={floors[k]!r}" for k in bad_floor)
        raise DataError(
            f"Benchmark floors must be numbers in [0, 1) (chance-level accuracy), got {shown}."
        )
    bad_items = [k for k, v in n_items.items() if not (_is_number(v) and v > 0)]
    if bad_items:
        shown = format_rows(f"{k}={n_items[k]!r}" for k in bad_items)
        raise DataError(f"Benchmark item counts must be positive numbers, got {shown}.")

    known = _read_table()
    unknown = [n for n in names if n not in known.index and n not in floors]
    if unknown:
        example = unknown[0]
        raise DataError(
            f"No known chance-level floor for benchmark(s) {format_rows(unknown)}. "
            f"Give one: floors={{{example!r}: 0.25}} in Python, or --floor '{example}=0.25' "
            f"on the command line (use 0 for free-form answers, 1/#choices for multiple choice). "
            f"Known benchmarks: {', '.join(known.index)}."
        )

    out = known.reindex(names)[["floor", "n_items", "leaderboard", "answer"]]
    out["leaderboard"] = out["leaderboard"].fillna("user")
    out["answer"] = out["answer"].fillna("unknown")
    for name in names:
        if name in floors:
            out.loc[name, "floor"] = float(floors[name])
        if name in n_items:
            out.loc[name, "n_items"] = float(n_items[name])
    out.index.name = "benchmark"
    return out.astype({"floor": float, "n_items": float})
