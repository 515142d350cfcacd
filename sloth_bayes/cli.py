"""Command line: ``sloth-bayes fit | forecast | demo | data ...`` mapping one-to-one onto
the Python API. ``main(argv)`` returns an exit status so tests call it in-process.

Other modules add their commands through a ``register_cli(subparsers)`` function
(diagnostics, backtest, SBC, report), so each concern keeps its CLI next to its code.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from pathlib import Path

PLUGIN_MODULES = ("diagnostics", "backtest", "sbc", "report")


def _set_devices(chains: int) -> None:
    """One JAX CPU device per chain, so ``chain_method="parallel"`` runs them all at once
    (must happen before JAX starts). More chains than cores still share one parallel map:
    the OS interleaves them, which beats running them one after the other."""
    import numpyro

    numpyro.set_host_device_count(max(1, chains))


def _floors(items: list[str] | None) -> dict[str, float] | None:
    if not items:
        return None
    out = {}
    for item in items:
        name, sep, value = item.rpartition("=")
        if not sep:
            raise SystemExit(f"--floor expects NAME=VALUE, got {item!r}")
        out[name] = float(value)
    return out


def model_config(options: list[str] | None, n_skills: int | None = None):
    """A :class:`~sloth_bayes.model.ModelConfig` from ``NAME=VALUE`` strings (``--option``;
    :meth:`~sloth_bayes.model.ModelConfig.from_options`); ``n_skills`` (``--skills``) wins."""
    from .model import ModelConfig

    try:
        config = ModelConfig.from_options(options or [])
        return config if n_skills is None else config.with_options(n_skills=int(n_skills))
    except ValueError as err:
        raise SystemExit(f"--option: {err}") from None


def add_option_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--option",
        action="append",
        metavar="NAME=VALUE",
        help="a model option of ModelConfig (repeatable), e.g. deviation_growth=linear",
    )


def _add_sampler_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--skills", type=int, default=None, help="number of latent skills K")
    add_option_arg(p)
    p.add_argument("--chains", type=int, default=4)
    p.add_argument("--warmup", type=int, default=1000)
    p.add_argument("--draws", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--chain-method",
        default="parallel",
        choices=["parallel", "sequential", "vectorized"],
        help="how chains share the device(s); parallel uses one CPU core per chain",
    )
    p.add_argument("--benchmarks", nargs="+", default=None, help="benchmark columns to fit")
    p.add_argument("--floor", action="append", metavar="NAME=VALUE", help="chance floor of a benchmark")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def _model_from_args(args):
    from .estimator import SlothBayes

    return SlothBayes(
        config=model_config(args.option, args.skills),
        chains=args.chains,
        warmup=args.warmup,
        draws=args.draws,
        chain_method=args.chain_method,
    )


def cmd_fit(args) -> int:
    import pandas as pd

    from .datasets import find_leaderboard

    _set_devices(args.chains)
    path = find_leaderboard(args.data)
    model = _model_from_args(args).fit(
        pd.read_csv(path),
        benchmarks=args.benchmarks,
        floors=_floors(args.floor),
        seed=args.seed,
        progress_bar=False if args.no_progress else None,
    )
    model.save(args.out)
    print(f"fitted {path} -> {args.out}")
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
    import pandas as pd

    from .estimator import SlothBayes
    from .utils import atomic_write

    model = SlothBayes.load(args.fit)
    table = model.forecast(pd.read_csv(args.queries), seed=args.seed)
    with atomic_write(args.out) as fh:
        table.to_csv(fh, index=False)
    print(f"{len(table)} forecasts -> {args.out}")
    return 0


def cmd_demo(args) -> int:
    """The main job: fit the leaderboard without a family's larger models, forecast them."""
    import pandas as pd

    from .data import MODEL, SIZE, SUBFAMILY
    from .datasets import find_leaderboard, load_simulated

    _set_devices(args.chains)
    try:
        path = find_leaderboard(args.data)
        table, source = pd.read_csv(path), f"the leaderboard table at {path}"
    except FileNotFoundError as exc:
        table, source = load_simulated(), "the simulated demo table (data/simulated_leaderboard.csv)"
        print(f"No real table found ({exc}).")
    print(f"Using {source}.")
    family = args.family
    if family not in set(table[SUBFAMILY].astype(str)):
        family = table[SUBFAMILY].value_counts().index[0]
        print(f"Sub-family {args.family!r} not in the table; using {family!r}.")
    fam = table[table[SUBFAMILY].astype(str) == family].sort_values(SIZE, kind="stable")
    smallest = fam.iloc[:1]
    queries = fam.iloc[1:]
    train = table[~table[MODEL].isin(queries[MODEL])]
    print(
        f"Fitting on {len(train)} LLMs; {family} is seen only through {smallest[MODEL].iloc[0]} "
        f"({smallest[SIZE].iloc[0]:g}B); forecasting {len(queries)} larger models."
    )
    model = _model_from_args(args).fit(
        train, seed=args.seed, progress_bar=False if args.no_progress else None
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
    cols = ["model", "benchmark", "truth", "median", "lower_90", "upper_90", "p_overestimate"]
    with pd.option_context("display.width", 160, "display.max_rows", 500):
        print(fc[cols].round(3).to_string(index=False))
    inside = ((fc.truth >= fc.lower_90) & (fc.truth <= fc.upper_90))[fc.truth.notna()]
    print(f"\n{inside.sum()} of {len(inside)} observed scores inside their 90% interval.")
    print(f"Saved {out / 'fit.nc'} and {out / 'forecast.csv'}.")
    return 0


def cmd_data(args) -> int:
    from .datasets import fetch_leaderboard, find_leaderboard

    if args.action == "fetch":
        print(fetch_leaderboard(force=args.force))
    else:
        print(find_leaderboard())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sloth-bayes", description="Bayesian skills scaling laws: forecast LLM benchmark scores."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("fit", help="fit the model to a leaderboard table and save the posterior")
    p.add_argument("data", nargs="?", help="CSV table (default: $SLOTH_BAYES_DATA or the cache)")
    p.add_argument("--out", required=True, help="netCDF file to write")
    _add_sampler_args(p)
    p.set_defaults(func=cmd_fit)

    p = sub.add_parser("forecast", help="forecast query models from a saved fit")
    p.add_argument("fit", help="netCDF file written by `fit`")
    p.add_argument("queries", help="CSV with Model, Family, Family2, Instruct, #Params (B)[, tokens]")
    p.add_argument("--out", required=True, help="forecast CSV to write")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_forecast)

    p = sub.add_parser("demo", help="main job: forecast a family's larger models from its smallest")
    p.add_argument("data", nargs="?", help="CSV table (default: $SLOTH_BAYES_DATA, else simulated)")
    p.add_argument("--family", default="qwen1.5", help="sub-family (Family2) to forecast")
    p.add_argument("--out", default="out", help="folder for fit.nc and forecast.csv")
    _add_sampler_args(p)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("data", help="locate or download the published leaderboard table")
    p.add_argument("action", choices=["fetch", "path"])
    p.add_argument("--force", action="store_true", help="download again even if cached")
    p.set_defaults(func=cmd_data)

    for name in PLUGIN_MODULES:
        if importlib.util.find_spec(f"sloth_bayes.{name}") is not None:
            module = importlib.import_module(f"sloth_bayes.{name}")
            if hasattr(module, "register_cli"):
                module.register_cli(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from .data import DataError
    from .io import FitFileError

    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (DataError, FitFileError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
