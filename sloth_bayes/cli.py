"""Command line: ``sloth-bayes fit | forecast | demo | data ...`` mapping one-to-one onto
the Python API. ``main(argv)`` returns an exit status so tests call it in-process.

Other modules add their commands through a ``register_cli(subparsers)`` function
(diagnostics, backtest, SBC, report), so each concern keeps its CLI next to its code. Only
the module of the command being run is imported: ``sloth-bayes --help`` starts neither
JAX nor matplotlib.

Every argument and input is checked before any work, and a user error is one line on
stderr with exit status 2 (``--debug`` shows the traceback); results go to stdout,
progress and warnings to stderr.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
import threading
import warnings
from contextlib import contextmanager
from pathlib import Path

from .errors import EXIT_INTERRUPTED, EXIT_USAGE, InputError, InputWarning, UsageError
from .options import (
    add_option_arg,
    check_counts,
    check_floor_names,
    check_input,
    check_output,
    model_config,
    parse_floors,
)

__all__ = ["build_parser", "main", "model_config"]

EXIT_INTERNAL = 3
"""An unexpected error: a bug, or an input that the checks miss."""

#: Modules that add commands, with each command's one-line help for ``sloth-bayes --help``
#: (listed without importing them; the module of the command being run registers it).
PLUGINS: dict[str, dict[str, str]] = {
    "diagnostics": {
        "diagnose": "convergence report and posterior summary of a saved fit (exit 1 if not converged)",
        "compare": "PSIS-LOO comparison of fits of the same table",
    },
    "backtest": {
        "backtest": "score forecasts of held-out families (leave-one-family-out protocols)",
        "guidance": "over-/under-estimation evidence of backtest folders (tables and figure)",
    },
    "sbc": {
        "sbc": "simulation-based calibration: ranks of true parameters among posterior draws",
    },
    "report": {
        "report": "write an HTML/Markdown report of a fit (figures as PNG)",
    },
}
PLUGIN_MODULES = tuple(PLUGINS)

#: Paths of each command, checked before it runs: inputs by ``dest`` (option string and
#: what it is, for messages; "folder" for a folder), the output's ``dest``, whether the output is a folder, and
#: the names a folder output receives (no input may be one of them).
PATHS: dict[str, tuple[dict[str, tuple[str, str]], str | None, bool, tuple[str, ...]]] = {
    "fit": ({"data": ("DATA", "table")}, "out", False, ()),
    "forecast": ({"fit": ("FIT", "fit file"), "queries": ("QUERIES", "query table")}, "out", False, ()),
    "demo": ({"data": ("DATA", "table")}, "out", True, ("fit.nc", "forecast.csv")),
    "diagnose": ({"fit": ("FIT", "fit file")}, "out", False, ()),
    "compare": ({"fits": ("FITS", "fit file")}, None, False, ()),
    "backtest": (
        {"data": ("DATA", "table")}, "out", True,
        ("cells.csv", "summary.csv", "fits.csv", "reference.csv", "summary.md"),
    ),
    "guidance": ({"folders": ("FOLDERS", "folder")}, "out", False, ()),
    "sbc": ({"template": ("--template", "table")}, "out", True, ("sbc_*.csv", "sbc_settings.json", "sbc_ranks.png")),
    "report": (
        {"fit": ("FIT", "fit file"), "forecast": ("--forecast", "forecast table"), "backtest": ("--backtest", "folder")},
        "out", True, ("report.html", "report.md", "*.png"),
    ),
}

EPILOG = """\
exit status:
  0    success
  1    a negative verdict: the fit did not converge (diagnose), or calibration
       was rejected (sbc)
  2    bad input or usage, or a file that cannot be read or written: the message
       says what to fix (arguments and inputs are checked before any work starts)
  3    an unexpected error (a bug): --debug shows the traceback
  130  interrupted by Ctrl-C (143: SIGTERM); a file being written is removed and
       an existing file keeps its previous content

Results go to stdout; progress, notes and warnings to stderr (--quiet: warnings only).
"""


def _version() -> str:
    from . import __version__

    return __version__


# -- shared helpers ------------------------------------------------------------------------
def note(args, message: str) -> None:
    """A progress line or note on stderr, unless ``--quiet``."""
    if not getattr(args, "quiet", False):
        print(message, file=sys.stderr)


def _set_devices(chains: int) -> None:
    """One JAX CPU device per chain, so ``chain_method="parallel"`` runs them all at once
    (must happen before JAX starts). More chains than cores still share one parallel map:
    the OS interleaves them, which beats running them one after the other."""
    import numpyro

    numpyro.set_host_device_count(max(1, chains))


def _add_sampler_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--skills", type=int, default=None, help="number of latent skills K (1 to the number of benchmarks)")
    add_option_arg(p)
    p.add_argument("--chains", type=int, default=4)
    p.add_argument("--warmup", type=int, default=1000)
    p.add_argument("--draws", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0, help="0 to 2**32 - 1; the same seed gives the same posterior")
    p.add_argument(
        "--chain-method",
        default="parallel",
        choices=["parallel", "sequential", "vectorized"],
        help="how chains share the device(s); parallel uses one CPU core per chain",
    )
    p.add_argument("--benchmarks", nargs="+", default=None, help="benchmark columns to fit")
    p.add_argument(
        "--floor", action="append", metavar="NAME=VALUE",
        help="chance floor in [0, 1) of a fitted benchmark (repeatable)",
    )
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def _model_from_args(args, config):
    from .estimator import SlothBayes

    return SlothBayes(
        config=config,
        chains=args.chains,
        warmup=args.warmup,
        draws=args.draws,
        chain_method=args.chain_method,
    )


def _progress(args) -> bool | None:
    return False if args.no_progress or getattr(args, "quiet", False) else None


def _training_table(args, path):
    """Read and validate a training table as ``fit`` would, before any sampling: returns
    ``(clean, meta, floors, config)`` or raises with what to fix."""
    from .data import check_fittable, read_csv, score_columns, validate_table

    floors = parse_floors(args.floor)
    table = read_csv(path, "training table")
    config = model_config(args.option, args.skills)  # imports the model (and JAX)
    requested = list(args.benchmarks) if args.benchmarks else score_columns(table)
    check_floor_names(floors, requested)
    if args.benchmarks:
        empty = [b for b in args.benchmarks if b in table.columns and table[b].isna().all()]
        if empty:
            raise UsageError(
                f"--benchmarks {' '.join(empty)}: no LLM of the table has a score there; drop "
                f"{'it' if len(empty) == 1 else 'them'} from --benchmarks or fill in scores."
            )
    clean, meta = validate_table(table, args.benchmarks, floors=floors)
    check_fittable(clean, meta, config.n_skills)
    return clean, meta, floors, config


# -- commands ------------------------------------------------------------------------------
def cmd_fit(args) -> int:
    clean, meta, floors, config = _training_table(args, args.data)
    _set_devices(args.chains)
    note(args, f"fitting {len(clean)} LLMs x {len(meta)} benchmarks ({args.chains} chains x {args.draws} draws)")
    model = _model_from_args(args, config).fit(
        clean,
        benchmarks=list(meta.index),
        floors=floors,
        seed=args.seed,
        progress_bar=_progress(args),
    )
    model.save(args.out)
    print(f"fitted {args.data} -> {args.out}")
    _print_rounding(model)
    _print_verdict(model)
    return 0


def _print_rounding(model) -> None:
    """Say which benchmarks' scores the fit read as rounded."""
    from .forecast import encoding_of

    enc = encoding_of(model.idata_)
    rounded = [f"{b} ({s:g})" for b, s in zip(enc.benchmarks, enc.score_step) if s > 0]
    if rounded:
        print("scores read as rounded (step): " + ", ".join(rounded))


def _print_verdict(model) -> None:
    """One-paragraph convergence verdict (full report: ``sloth-bayes diagnose``)."""
    try:
        from .diagnostics import convergence_report
    except ImportError:  # diagnostics module not present
        return
    print(convergence_report(model.idata_).text())


def cmd_forecast(args) -> int:
    from .data import read_csv, validate_queries
    from .utils import atomic_write

    queries = read_csv(args.queries, "query table")
    validate_queries(queries)  # before loading the fit: a bad table fails fast
    reference = None
    if args.reference:
        from .overestimate import parse_reference

        try:
            reference = parse_reference(args.reference)
        except ValueError as err:
            raise UsageError(f"--reference {args.reference!r}: {err}") from None
    from .estimator import SlothBayes

    model = SlothBayes.load(args.fit)
    try:
        table = model.forecast(queries, seed=args.seed, reference=reference)
    except ValueError as err:
        if reference is None:
            raise
        raise UsageError(f"--reference {args.reference!r}: {err}") from None
    with atomic_write(args.out) as fh:
        table.to_csv(fh, index=False)
    print(f"{len(table)} forecasts -> {args.out}")
    return 0


def cmd_demo(args) -> int:
    """Fit the leaderboard without a family's larger models, forecast them."""
    import pandas as pd

    from .data import MODEL, SIZE, SUBFAMILY, check_fittable, read_csv, validate_table
    from .datasets import find_leaderboard

    config = model_config(args.option, args.skills)
    floors = parse_floors(args.floor)
    path = find_leaderboard(args.data)
    table = read_csv(path, "training table")
    note(args, f"Using the leaderboard table at {path}.")
    clean, meta = validate_table(table, args.benchmarks, floors=floors)
    check_floor_names(floors, list(args.benchmarks or meta.index))
    family = args.family
    if family not in set(clean[SUBFAMILY].astype(str)):
        family = clean[SUBFAMILY].value_counts().index[0]
        note(args, f"Sub-family {args.family!r} not in the table; using {family!r}.")
    fam = clean[clean[SUBFAMILY].astype(str) == family].sort_values(SIZE, kind="stable")
    if len(fam) < 2:
        raise UsageError(
            f"--family {family}: the sub-family has {len(fam)} LLM in the table; the demo needs "
            f"at least two (the smallest is fitted, the others forecast). Choose another --family."
        )
    smallest = fam.iloc[:1]
    queries = fam.iloc[1:]
    train = clean[~clean[MODEL].isin(queries[MODEL])]
    check_fittable(train, meta, config.n_skills)
    note(
        args,
        f"Fitting on {len(train)} LLMs; {family} is seen only through {smallest[MODEL].iloc[0]} "
        f"({smallest[SIZE].iloc[0]:g}B); forecasting {len(queries)} larger models.",
    )
    _set_devices(args.chains)
    model = _model_from_args(args, config).fit(
        train, benchmarks=list(meta.index), floors=floors, seed=args.seed, progress_bar=_progress(args)
    )
    _print_verdict(model)
    fc = model.forecast(queries, seed=args.seed)
    benches = [str(b) for b in model.idata_.posterior["benchmark"].values]
    truth = queries.melt(id_vars=[MODEL], value_vars=benches, var_name="benchmark", value_name="truth")
    fc = fc.merge(truth.rename(columns={MODEL: "model"}), on=["model", "benchmark"], how="left")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model.save(out / "fit.nc")
    from .utils import atomic_write

    with atomic_write(out / "forecast.csv") as fh:
        fc.to_csv(fh, index=False)
    cols = ["model", "benchmark", "truth", "median", "lower_90", "upper_90", "point", "p_overestimate", "main_source"]
    with pd.option_context("display.width", 160, "display.max_rows", 500):
        print(fc[cols].round(3).to_string(index=False))
    inside = ((fc.truth >= fc.lower_90) & (fc.truth <= fc.upper_90))[fc.truth.notna()]
    print(f"\n{inside.sum()} of {len(inside)} observed scores inside their 90% interval.")
    print(f"Saved {out / 'fit.nc'} and {out / 'forecast.csv'}.")
    return 0


def cmd_data(args) -> int:
    from .datasets import fetch_leaderboard, find_leaderboard

    if args.action == "fetch":
        path = fetch_leaderboard(force=args.force)
        print(path)
        note(args, f"Fit it with `sloth-bayes fit {path} --out fit.nc`.")
    else:
        print(find_leaderboard())
    return 0


# -- parser --------------------------------------------------------------------------------
def _add_common(p: argparse.ArgumentParser, *, top: bool) -> None:
    """``--quiet`` and ``--debug``, accepted before or after the command name."""
    default = False if top else argparse.SUPPRESS
    if "--quiet" not in p._option_string_actions:
        p.add_argument("-q", "--quiet", action="store_true", default=default,
                       help="no progress or notes on stderr (warnings and errors still show)")
    if "--debug" not in p._option_string_actions:
        p.add_argument("--debug", action="store_true", default=default,
                       help="show the Python traceback of an error")


def _command_of(argv: list[str]) -> str | None:
    """The command named in ``argv`` (the first word that is not an option)."""
    return next((a for a in argv if not a.startswith("-")), None)


def build_parser(command: str | None = "*") -> argparse.ArgumentParser:
    """The argument parser. ``command`` names the command to parse for: only its module is
    imported (the others are listed by name); ``"*"`` imports and registers them all."""
    parser = argparse.ArgumentParser(
        prog="sloth-bayes",
        description="Bayesian skills scaling laws: forecast LLM benchmark scores.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    _add_common(parser, top=True)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, **kwargs) -> argparse.ArgumentParser:
        return sub.add_parser(name, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter, **kwargs)

    p = add("fit", help="fit the model to a leaderboard table and save the posterior")
    p.add_argument("data", nargs="?", help="CSV table (default: $SLOTH_BAYES_DATA, else the embedded table)")
    p.add_argument("--out", required=True, help="netCDF file to write (its folder must exist)")
    _add_sampler_args(p)
    p.set_defaults(func=cmd_fit)

    p = add("forecast", help="forecast query models from a saved fit")
    p.add_argument("fit", help="netCDF file written by `fit`")
    p.add_argument("queries", help="CSV with Model, Family, Family2, Instruct, #Params (B)[, tokens]")
    p.add_argument("--out", required=True, help="forecast CSV to write (its folder must exist)")
    p.add_argument("--seed", type=int, default=0, help="0 to 2**32 - 1")
    p.add_argument("--reference", default=None, metavar="SPEC",
                   help="a forecast to judge: a column of the queries, a number, or BENCH=VALUE|COLUMN,...; "
                        "adds reference and p_below_reference (P(truth < reference))")
    p.set_defaults(func=cmd_forecast)

    p = add("demo", help="forecast a family's larger models from its smallest")
    p.add_argument("data", nargs="?", help="CSV table (default: $SLOTH_BAYES_DATA, else the embedded table)")
    p.add_argument("--family", default="qwen1.5", help="sub-family (Family2) to forecast")
    p.add_argument("--out", default="out", help="folder for fit.nc and forecast.csv")
    _add_sampler_args(p)
    p.set_defaults(func=cmd_demo)

    p = add("data", help="locate or download the published leaderboard table")
    p.add_argument("action", choices=["fetch", "path"])
    p.add_argument("--force", action="store_true", help="download again even if cached")
    p.set_defaults(func=cmd_data)

    for module, commands in PLUGINS.items():
        if command == "*" or command in commands:
            importlib.import_module(f"sloth_bayes.{module}").register_cli(sub)
        else:
            for name, text in commands.items():
                sub.add_parser(name, help=text, add_help=False)
    for p in sub.choices.values():
        _add_common(p, top=False)
    return parser


# -- running a command ---------------------------------------------------------------------
def check_args(args) -> None:
    """The checks every command gets before it runs: counts and seeds in range, inputs
    present, outputs writable and distinct from every input."""
    check_counts(args)
    spec = PATHS.get(args.command)
    if spec is None:
        return
    inputs, out_dest, folder, writes = spec
    given: dict[str, Path | None] = {}
    for dest, (option, what) in inputs.items():
        value = getattr(args, dest, None)
        if value is None and dest == "data" and args.command in ("fit", "backtest"):
            from .datasets import find_leaderboard

            value = str(find_leaderboard(None))  # the default table, named in messages
            args.data = value
        for i, item in enumerate(value if isinstance(value, list) else [value]):
            if item is not None:
                given[option if not isinstance(value, list) else f"{option}[{i + 1}]"] = check_input(
                    item, option, what
                )
    out = getattr(args, out_dest, None) if out_dest else None
    if out is not None:
        check_output(out, "--" + out_dest, given, folder=folder, writes=writes)
    if args.command == "report":  # the report folder is created before the fit is read
        from .io import load_fit

        load_fit(args.fit)
        if args.forecast:
            from .data import read_csv

            read_csv(args.forecast, "forecast table")


class _Terminated(BaseException):
    """SIGTERM, raised like Ctrl-C so that files being written are removed."""


@contextmanager
def _signals():
    """Turn SIGTERM into an exception for the duration of a command (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        raise _Terminated(signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def _warnings_to_stderr():
    """This package's warnings as one ``warning: ...`` line each on stderr."""
    with warnings.catch_warnings():
        warnings.simplefilter("always", InputWarning)
        original = warnings.showwarning

        def show(message, category, filename, lineno, file=None, line=None):
            ours = issubclass(category, UserWarning) and "sloth_bayes" in str(filename)
            if issubclass(category, InputWarning) or ours:
                print(f"warning: {message}", file=sys.stderr)
            else:
                original(message, category, filename, lineno, file, line)

        warnings.showwarning = show
        yield


def _error(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Run ``sloth-bayes`` with ``argv`` (default: ``sys.argv[1:]``); return the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        parser = build_parser(_command_of(argv))
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:  # --help / --version (0), or a usage error argparse printed (2)
            return exc.code if isinstance(exc.code, int) else EXIT_USAGE
        with _signals(), _warnings_to_stderr():
            check_args(args)
            return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except _Terminated:
        print("terminated", file=sys.stderr)
        return 128 + int(signal.SIGTERM)
    except (InputError, OSError) as exc:  # bad input, a missing file, a folder that is a file
        if debug:
            raise
        _error(str(exc) if isinstance(exc, InputError) or not exc.strerror else _os_message(exc))
        return EXIT_USAGE
    except SystemExit as exc:  # a command's own usage message (e.g. --option NAME=VALUE)
        if isinstance(exc.code, int) or exc.code is None:
            return exc.code or 0
        if debug:
            raise
        _error(str(exc.code))
        return EXIT_USAGE
    except Exception as exc:
        if debug:
            raise
        _error(
            f"unexpected {type(exc).__name__}: {exc}. This is a bug, or an input the checks "
            f"miss: run again with --debug for the traceback, and please report it."
        )
        return EXIT_INTERNAL


def _os_message(exc: OSError) -> str:
    """``[Errno 2] No such file or directory: 'x'`` as ``x: No such file or directory``."""
    name = exc.filename if exc.filename is not None else ""
    return f"{name}: {exc.strerror}" if name else exc.strerror


if __name__ == "__main__":
    sys.exit(main())
