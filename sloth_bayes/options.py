"""Command-line arguments shared by the commands: model options, floors, and the checks
that run before any work (counts, seeds, input and output paths).

Kept apart from :mod:`sloth_bayes.cli` so that the modules adding their own commands
(``backtest``, ``sbc``...) import these helpers without importing the command line. Nothing
here imports NumPy, pandas or JAX at module level: ``sloth-bayes --help`` stays fast.
"""

from __future__ import annotations

import argparse
import fnmatch
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from .errors import UsageError
from .utils import SEED_LIMIT, format_rows

__all__ = [
    "COUNT_ARGS",
    "add_option_arg",
    "check_counts",
    "check_floor_names",
    "check_input",
    "check_output",
    "model_config",
    "parse_floors",
]

#: Arguments (by ``dest``) that count something and must be whole numbers >= 1.
COUNT_ARGS = (
    "chains", "warmup", "draws", "reps", "n_draws", "jobs", "families", "max_rows",
    "svi_steps", "svi_restarts", "skills",
)


def flag(dest: str) -> str:
    """The option string of an argparse ``dest`` (``n_draws`` -> ``--n-draws``)."""
    return "--" + dest.replace("_", "-")


def model_config(options: list[str] | None, n_skills: int | None = None):
    """A :class:`~sloth_bayes.model.ModelConfig` from ``NAME=VALUE`` strings (``--option``;
    :meth:`~sloth_bayes.model.ModelConfig.from_options`: a modelling choice or a prior
    scale); ``n_skills`` (``--skills``) wins. A name or value it cannot take exits with a
    message naming it (``SystemExit``)."""
    from .model import ModelConfig

    try:
        config = ModelConfig.from_options(options or [])
        return config if n_skills is None else config.with_options(n_skills=int(n_skills))
    except ValueError as err:
        raise SystemExit(f"--option {err}") from None


def add_option_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--option",
        action="append",
        metavar="NAME=VALUE",
        help="a model option of ModelConfig (repeatable), e.g. sub=0.3 or family_profile=false",
    )


def parse_floors(items: Sequence[str] | None) -> dict[str, float] | None:
    """``--floor NAME=VALUE`` strings as a dict; a value must be a number in [0, 1).

    >>> parse_floors(["MyQA=0.25", " Other QA = 0 "])
    {'MyQA': 0.25, 'Other QA': 0.0}
    """
    if not items:
        return None
    out = {}
    for item in items:
        name, sep, text = item.rpartition("=")
        name = name.strip()
        if not sep or not name:
            raise UsageError(f"--floor expects NAME=VALUE (e.g. --floor MyQA=0.25), got {item!r}.")
        try:
            value = float(text)
        except ValueError:
            raise UsageError(
                f"--floor {item!r}: {text.strip()!r} is not a number; give the chance-level "
                f"accuracy as a fraction in [0, 1), e.g. 0.25 for four-way multiple choice."
            ) from None
        if not 0 <= value < 1:
            raise UsageError(
                f"--floor {item!r}: the floor must be in [0, 1) (chance-level accuracy as a "
                f"fraction; percent: divide by 100)."
            )
        out[name] = value
    return out


def check_floor_names(floors: dict[str, float] | None, benchmarks: Iterable[str]) -> None:
    """Refuse a ``--floor`` for a benchmark that is not fitted (a typo would be ignored)."""
    fitted = list(benchmarks)
    unknown = [name for name in (floors or {}) if name not in fitted]
    if unknown:
        raise UsageError(
            f"--floor for {format_rows(repr(n) for n in unknown)}, which is not a benchmark being "
            f"fitted ({format_rows(fitted, limit=12)}). Check the spelling, or add it with --benchmarks."
        )


def check_counts(args: argparse.Namespace) -> None:
    """Counts >= 1, seeds in [0, 2**32) and probabilities in (0, 1), for whichever of them
    a command has."""
    for dest in COUNT_ARGS:
        value = getattr(args, dest, None)
        if value is not None and value < 1:
            raise UsageError(f"{flag(dest)} {value}: must be a whole number of 1 or more.")
    prob = getattr(args, "prob", None)
    if prob is not None and not 0 < prob < 1:
        raise UsageError(f"--prob {prob:g}: give a probability between 0 and 1, e.g. 0.9.")
    seed = getattr(args, "seed", None)
    if seed is not None and not 0 <= seed < SEED_LIMIT:
        raise UsageError(
            f"--seed {seed}: seeds are integers from 0 to {SEED_LIMIT - 1} (each gives its "
            f"own posterior); choose one in that range."
        )


def _same(a: Path, b: Path) -> bool:
    """Whether two paths name one file (after symlinks, and hard links when both exist)."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def check_input(path, option: str, what: str = "file") -> Path:
    """An input path that must exist: a file, or a folder when ``what`` is ``"folder"``."""
    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"no {what} at {str(path)!r} ({option}): check the path.")
    if what == "folder" and not path.is_dir():
        raise UsageError(f"{option} {str(path)!r} is a file; give the folder.")
    if what != "folder" and path.is_dir():
        raise UsageError(f"{option} {str(path)!r} is a folder; give the {what}.")
    return path


def _writable_folder(folder: Path, option: str, out: Path) -> None:
    """The folder that will hold an output: the nearest existing ancestor must be a writable
    folder (missing folders below it are created later, once the inputs are known good)."""
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise UsageError(f"{option} {str(out)!r}: {str(probe)!r} is a file, not a folder; choose another {option}.")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise UsageError(f"{option} {str(out)!r}: cannot write in {str(probe)!r} (permission denied); choose another {option}.")


def check_output(
    path,
    option: str,
    inputs: dict[str, Path | None],
    *,
    folder: bool = False,
    writes: Sequence[str] = (),
) -> Path:
    """Check an output path before any work, so that nothing is computed for a file that
    cannot be written, and no input is ever replaced.

    Parameters
    ----------
    path : the output (a file, or a folder when ``folder``).
    option : its option string, for messages (``"--out"``).
    inputs : the command's input paths by option string (None for absent ones).
    folder : whether ``path`` is a folder the command writes files into; it may not exist
        yet (it is created once the inputs are known good), but its nearest existing
        ancestor must be a writable folder.
    writes : for a folder, the names (glob patterns) the command writes inside it.

    Raises
    ------
    UsageError
        If the output is (or would overwrite) an input, a file output is an existing
        folder or lies in a missing folder, or the folder cannot be written.
    """
    path = Path(path).expanduser()
    given = {opt: Path(p).expanduser() for opt, p in inputs.items() if p is not None}
    if folder:
        if path.exists() and not path.is_dir():
            raise UsageError(f"{option} {str(path)!r} is a file; {option} takes a folder.")
        for opt, src in given.items():
            if _same(src, path):
                raise UsageError(f"{option} {str(path)!r} is the input {opt}; choose another folder.")
            if src.is_file() and _same(src.parent, path) and any(fnmatch.fnmatch(src.name, w) for w in writes):
                raise UsageError(
                    f"{option} {str(path)!r} would overwrite the input {opt} {str(src)!r} "
                    f"(the command writes {src.name} there); choose another folder."
                )
        _writable_folder(path, option, path)
        return path
    if path.is_dir():
        raise UsageError(
            f"{option} {str(path)!r} is a folder; give a file name, e.g. {str(path / 'out')!r}."
        )
    for opt, src in given.items():
        if _same(src, path):
            raise UsageError(
                f"{option} {str(path)!r} is the same file as the input {opt} {str(src)!r}: writing "
                f"would replace it. Choose another {option}."
            )
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.exists():
        raise UsageError(
            f"{option} {str(path)!r}: the folder {str(parent)!r} does not exist; create it "
            f"(mkdir -p {parent}) or choose another {option}."
        )
    _writable_folder(parent, option, path)
    return path
