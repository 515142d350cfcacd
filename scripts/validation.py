"""Measure what ``docs/validation.md`` reports, and write the page.

    python scripts/validation.py                          # every section (about an hour, 2 cores)
    python scripts/validation.py --sections demo,speed    # some; the others keep their numbers
    python scripts/validation.py --quick                  # a smoke run at reduced draws

Sections: ``accuracy`` (lofo-1 backtest with baselines), ``zero_shot`` (held-out families with
no observed model), ``families`` (every family held out in turn), ``demo`` (the main command),
``convergence`` (the default fit at several seeds), ``speed`` (fit, backtest, forecast).
Each section's numbers are kept in ``docs/validation/<section>.json`` with the commands that
produced them, the date, the machine and the package version; the page is rendered from these
files, so a section refreshed alone leaves the others as they were. ``--render`` only rewrites
the page. ``--quick`` writes under ``scratch/validation_quick/`` (not the docs): its numbers
are not to be reported.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SECTIONS = ("accuracy", "zero_shot", "future", "families", "demo", "convergence", "speed")
TITLES = {
    "accuracy": "Accuracy and calibration: one observed model per held-out family (lofo-1)",
    "zero_shot": "Held-out families with no observed model (zero-shot)",
    "future": "Newer families, and when a forecast runs too high or too low",
    "families": "Every family held out in turn",
    "demo": "The main command: qwen1.5 from its smallest model",
    "convergence": "Convergence of the default fit",
    "speed": "Speed",
}
#: The Sloth paper's code on the shared groups (EVALUATION.md): best configuration per set.
PAPER_MAE = {"v1": (4.35, 4.37), "v2": (3.32, 3.15), "all": (4.19, 3.76)}  # (pooled, groups)
SETS = ("v1", "v2", "all")


# --- settings -------------------------------------------------------------------------------
def settings(quick: bool) -> dict:
    """Sampler settings and scope of every measurement (full, or a quick smoke run)."""
    if quick:
        sampler = ["--chains", "2", "--warmup", "100", "--draws", "100", "--svi-steps", "300",
                   "--svi-restarts", "2"]
        return {
            "backtest_sampler": sampler, "jobs": 1, "backtest_seeds": [0],
            "lofo_sets": ["v2"], "zero_shot_sets": ["v2"], "groups": ["olmo"],
            "family_levels": ["coarse"], "max_families": 2,
            "fit_seeds": [0], "fit": {"chains": 2, "warmup": 100, "draws": 100, "svi_steps": 300,
                                      "svi_restarts": 2},
            "demo_sampler": ["--chains", "2", "--warmup", "100", "--draws", "100"],
            "forecast_sizes": [1, 10], "forecast_repeat": 1,
        }
    sampler = ["--chains", "2", "--warmup", "200", "--draws", "200"]
    return {
        "backtest_sampler": sampler, "jobs": 2, "backtest_seeds": [0, 1],
        "lofo_sets": list(SETS), "zero_shot_sets": ["v2", "all"], "groups": None,
        "family_levels": ["coarse", "sub"], "max_families": None,
        "fit_seeds": list(range(6)), "fit": {"chains": 4, "warmup": 1000, "draws": 1000},
        "demo_sampler": [], "forecast_sizes": [1, 10, 100], "forecast_repeat": 3,
    }


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()}"


def commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                             text=True, timeout=10, check=False)
        return out.stdout.strip() or None
    except OSError:
        return None


def _load_benchmark(name: str):
    """A module of ``benchmarks/`` (the speed scripts share their measuring code with this one)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _cli(args: list[str]) -> float:
    """Run ``sloth-bayes ARGS`` in this process; return its wall time. A failure stops here."""
    from sloth_bayes.cli import main

    t0 = time.perf_counter()
    rc = main(args)
    if rc not in (0, None):
        raise SystemExit(f"`sloth-bayes {shlex.join(args)}` exited with {rc}")
    return time.perf_counter() - t0


def _fmt(value, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


# --- measurements ---------------------------------------------------------------------------
def _backtest(protocol: str, sets: list[str], seed: int, cfg: dict, work: Path, baselines: bool):
    """Run one backtest through the command line; return (command, summary DataFrame, seconds)."""
    import pandas as pd

    out = work / f"backtest_{protocol}_s{seed}"
    args = ["backtest", "--protocol", protocol]
    for s in sets:
        args += ["--set", s]
    args += cfg["backtest_sampler"] + ["--jobs", str(cfg["jobs"]), "--seed", str(seed), "--quiet"]
    if cfg["groups"]:
        args += ["--groups", ",".join(cfg["groups"])]
    if not baselines:
        args.append("--no-baselines")
    shown = "sloth-bayes " + shlex.join(args + ["--out", out.name + "/"])
    seconds = _cli(args + ["--out", str(out)])
    return shown, pd.read_csv(out / "summary.csv"), seconds


def _row(summary, set_name: str, seed: int, with_baselines: bool) -> list:
    block = summary[summary["set"] == set_name]
    pooled = block[block["level"] == "pooled"].iloc[0]
    groups = block[block["level"] == "group mean"]
    bench = block[block["level"] == "benchmark"].sort_values("coverage_90")
    lowest = f"{bench.iloc[0]['key']} {bench.iloc[0]['coverage_90']:.3f}" if len(bench) else "n/a"
    get = lambda r, c: float(r[c]) if c in r and r[c] == r[c] else None  # noqa: E731
    row = [seed, set_name, int(pooled["n"]), _fmt(get(pooled, "mae_points")),
           _fmt(get(groups.iloc[0], "mae_points")) if len(groups) else "n/a"]
    if with_baselines:
        row += [_fmt(get(pooled, "mae_point_skills_points")), _fmt(get(pooled, "mae_flops_sigmoid_points"))]
    row += [_fmt(get(pooled, "coverage_50"), 3), _fmt(get(pooled, "coverage_90"), 3),
            _fmt(get(pooled, "width_90_points"), 1), _fmt(get(pooled, "crps_points")), lowest,
            _fmt(get(pooled, "share_over"), 3)]
    return row


def measure_accuracy(cfg: dict, work: Path, protocol: str = "lofo-1") -> dict:
    sets = cfg["lofo_sets"] if protocol == "lofo-1" else cfg["zero_shot_sets"]
    commands, rows, runs = [], [], []
    lofo = protocol == "lofo-1"
    columns = ["seed", "set", "cells", "MAE", "MAE (group mean)"]
    columns += ["point skills law", "log-FLOPs sigmoid"] if lofo else []
    columns += ["50% coverage", "90% coverage", "90% width", "CRPS", "lowest benchmark at 90%",
                "median above truth"]
    for i, seed in enumerate(cfg["backtest_seeds"]):
        baselines = lofo and i == 0  # the baselines do not depend on the seed: run them once
        shown, summary, sec = _backtest(protocol, sets, seed, cfg, work, baselines)
        commands.append(shown)
        runs.append({"seed": seed, "seconds": round(sec, 1), "command": shown})
        for s in sets:
            row = _row(summary, s, seed, with_baselines=baselines)
            if lofo and not baselines:
                row[5:5] = ["", ""]
            rows.append(row)
    tables = [{"caption": "MAE, CRPS and widths in score points (0-100); coverage as a share of "
                          "held-out scores; pooled over scored cells unless said",
               "columns": columns, "rows": rows}]
    notes = []
    if protocol == "lofo-1":
        tables.append({
            "caption": "Reference: the Sloth paper's code on the same groups, best configuration "
                       "per set (EVALUATION.md); target = its group-mean MAE less 10%",
            "columns": ["set", "MAE (pooled)", "MAE (group mean)", "target (group mean)"],
            "rows": [[s, f"{PAPER_MAE[s][0]:.2f}", f"{PAPER_MAE[s][1]:.2f}",
                      f"{0.9 * PAPER_MAE[s][1] + 1e-9:.2f}"] for s in sets],
        })
    return {"commands": commands, "tables": tables, "notes": notes, "runs": runs}


def measure_future(cfg: dict, work: Path, seed: int = 0) -> dict:
    """The ``future`` protocol (sub-families first released from 2024-01, seen through their
    smallest model): accuracy, how well ``p_overestimate`` tells the classic point forecast's
    direction, and the over-estimation guidance by extrapolation distance."""
    import pandas as pd

    shown, summary, sec = _backtest("future", list(SETS), seed, cfg, work, baselines=False)
    out = work / f"backtest_future_s{seed}"
    signal = pd.read_csv(out / "signal.csv")
    guidance = pd.read_csv(out / "guidance.csv")
    rows = [_row(summary, s, seed, with_baselines=False) for s in SETS]
    sig_rows = [[r["set"], int(r["n"]), _fmt(r["over_rate_point"], 3), _fmt(r["p_over_mean"], 3),
                 _fmt(r["auc"], 3), _fmt(r["brier"], 3), _fmt(r["ece"], 3), _fmt(r["over_rate_median"], 3)]
                for _, r in signal.iterrows()]
    dist = guidance[guidance["scenario"] == "distance"]
    dist_rows = [[r["key"], int(r["n"]), _fmt(r.get("over_rate_point"), 3), _fmt(r.get("bias_point_points")),
                  _fmt(r.get("over_rate_median"), 3), _fmt(r.get("bias_median_points"))] for _, r in dist.iterrows()]
    guide = "sloth-bayes guidance " + out.name + "/ --out guidance.md --figure reliability.png"
    return {
        "commands": [shown, guide],
        "tables": [
            {"caption": "Accuracy on the newer families (pooled over scored cells; score points)",
             "columns": ["seed", "set", "cells", "MAE", "MAE (group mean)", "50% coverage", "90% coverage",
                         "90% width", "CRPS", "lowest benchmark at 90%", "median above truth"],
             "rows": rows},
            {"caption": "Does p_overestimate = P(truth < point) tell whether the classic point forecast is "
                        "too high? (AUC, Brier, ECE over 10 equal-width bins)",
             "columns": ["set", "cells", "point above truth", "mean p_overestimate", "AUC", "Brier", "ECE",
                         "median above truth"],
             "rows": sig_rows},
            {"caption": "Over-estimation by extrapolation distance (decades of size beyond the family's "
                        "largest observed model), all sets pooled",
             "columns": ["distance", "cells", "point above truth", "point signed error", "median above truth",
                         "median signed error"],
             "rows": dist_rows},
        ],
        "notes": ["`sloth-bayes guidance` writes the full table (by benchmark, observed models, base vs "
                  "instruct, family kind, release year) and the reliability diagram."],
        "runs": [{"seed": seed, "seconds": round(sec, 1), "command": shown}],
    }


def measure_families(cfg: dict, work: Path, seed: int = 0) -> dict:
    """Every coarse family held out (forecast as a new family), and every sub-family of a
    family with several (forecast as a new sub-family of a known family), zero-shot, set all."""
    from functools import partial

    import numpy as np

    from sloth_bayes import SlothBayes
    from sloth_bayes.backtest import GROUPS, run_backtest
    from sloth_bayes.data import FAMILY, SUBFAMILY
    from sloth_bayes.datasets import load_leaderboard
    from sloth_bayes.metrics import group_bootstrap

    table = load_leaderboard()
    subs = table.groupby(table[FAMILY].astype(str))[SUBFAMILY].agg(lambda s: tuple(sorted(set(s.astype(str)))))
    sampler = dict(zip(cfg["backtest_sampler"][::2], cfg["backtest_sampler"][1::2]))
    factory = partial(SlothBayes, chains=int(sampler["--chains"]), warmup=int(sampler["--warmup"]),
                      draws=int(sampler["--draws"]))
    protocol_subs = {s for g in GROUPS.values() for subs_ in g.values() for s in subs_}
    rows, commands = [], []
    for level in cfg["family_levels"]:
        if level == "coarse":
            groups = {f"family {c}": s for c, s in subs.items()}
        else:
            groups = {f"sub-family {s}": (s,) for many in subs if len(many) > 1 for s in many}
        if cfg["max_families"]:
            groups = dict(list(groups.items())[: cfg["max_families"]])
        t0 = time.perf_counter()
        result = run_backtest(table, sets=["all"], protocol="zero-shot", model_factory=factory,
                              seed=seed, jobs=cfg["jobs"], baselines=False, groups=groups, verbose=False)
        seconds = time.perf_counter() - t0
        cells = result.cells
        cells["in_protocol"] = cells["family2"].astype(str).isin(protocol_subs)
        for label, part in (("all", cells), ("families of the public groups", cells[cells.in_protocol]),
                            ("the others", cells[~cells.in_protocol])):
            if not len(part):
                continue
            t = part["truth"]
            in50 = float(((t >= part["lower_50"]) & (t <= part["upper_50"])).mean())
            in90 = float(((t >= part["lower_90"]) & (t <= part["upper_90"])).mean())
            b = group_bootstrap(part).set_index("metric").loc["coverage_90"]
            lo, hi = (float(np.atleast_1d(b[k])[0]) for k in ("lower", "upper"))
            rows.append([level, label, len(part), part["group"].nunique(),
                         _fmt(100 * float(part["abs_error"].mean())), _fmt(100 * float(part["crps"].mean())),
                         _fmt(in50, 3), _fmt(in90, 3), f"{lo:.3f}-{hi:.3f}"])
        commands.append(f"python scripts/validation.py --sections families  # level {level}: "
                        f"{len(groups)} groups, {seconds:.0f} s")
    return {
        "commands": commands,
        "tables": [{"caption": "Zero-shot, all twelve benchmarks, seed 0. coarse: each coarse family "
                               "fitted without any of its models and forecast as a new family; sub: "
                               "each sub-family of a family with several, forecast as a new sub-family "
                               "of a known family. Range: 90% coverage over resampled families",
                    "columns": ["level", "families", "cells", "groups", "MAE", "CRPS", "50% coverage",
                                "90% coverage", "90% coverage, resampled"],
                    "rows": rows}],
        "notes": [],
    }


def measure_demo(cfg: dict, work: Path) -> dict:
    out = work / "demo"
    args = ["demo", "--seed", "0", "--no-progress"] + cfg["demo_sampler"]
    seconds = _cli(args + ["--out", str(out)])
    return demo_record(out, seconds, "sloth-bayes " + shlex.join(args + ["--out", "out/"]))


def demo_record(out: Path, seconds: float, command: str) -> dict:
    """The demo section from the files ``sloth-bayes demo`` wrote in ``out``."""
    import pandas as pd

    from sloth_bayes import SlothBayes
    from sloth_bayes.diagnostics import convergence_report

    fc = pd.read_csv(out / "forecast.csv")
    known = fc.dropna(subset=["truth"])
    inside = ((known.truth >= known.lower_90) & (known.truth <= known.upper_90))
    rep = convergence_report(SlothBayes.load(out / "fit.nc").idata_)
    by_bench = (known.assign(err=(known["median"] - known.truth).abs() * 100)
                .groupby("benchmark", sort=False)["err"].mean())
    return {
        "commands": [command + "   # = bash scripts/main.sh"],
        "tables": [
            {"caption": "qwen1.5 fitted through its 0.5B model only; its 7 larger models forecast",
             "columns": ["scored cells", "MAE", "inside 90% interval", "90% width", "converged",
                         "max R-hat", "min bulk ESS", "divergences", "seconds"],
             "rows": [[len(known), _fmt(100 * float((known["median"] - known.truth).abs().mean())),
                       f"{int(inside.sum())} of {len(known)}",
                       _fmt(100 * float((known.upper_90 - known.lower_90).mean()), 1),
                       "yes" if rep.ok else "no", _fmt(rep.max_rhat, 4), str(round(rep.min_ess_bulk)),
                       str(rep.divergences), _fmt(seconds, 0)]]},
            {"caption": "MAE by benchmark (score points)",
             "columns": list(by_bench.index), "rows": [[_fmt(v, 1) for v in by_bench.values]]},
        ],
        "notes": [],
        "fit": str(out / "fit.nc"),
    }


def measure_convergence(cfg: dict, work: Path) -> dict:
    from sloth_bayes.datasets import load_leaderboard

    rows = _load_benchmark("fit_speed").measure_fits(load_leaderboard(), cfg["fit_seeds"], **cfg["fit"])
    ok = int(rows["converged"].sum())
    extra = "".join(f" --{k} {cfg['fit'][k]}" for k in ("chains", "warmup", "draws")
                    if cfg["fit"][k] != {"chains": 4, "warmup": 1000, "draws": 1000}[k])
    extra += "".join(f" --sampler-option {k}={v}" for k, v in cfg["fit"].items()
                     if k not in ("chains", "warmup", "draws"))
    return {
        "commands": [f"python benchmarks/fit_speed.py --seed {cfg['fit_seeds'][0]} "
                     f"--repeat {len(cfg['fit_seeds'])}{extra}"],
        "tables": [{"caption": f"Embedded table (160 LLMs, 12 benchmarks), default model, "
                               f"{cfg['fit']['chains']} chains x {cfg['fit']['draws']} draws after "
                               f"{cfg['fit']['warmup']} warm-up; target: R-hat <= 1.01, bulk ESS >= 400, "
                               f"no divergence",
                    "columns": ["seed", "max R-hat", "min bulk ESS", "divergences", "converged",
                                "seconds", "slowest quantity"],
                    "rows": [[int(r.seed), _fmt(r.max_rhat, 4), int(r.min_ess_bulk), int(r.divergences),
                              "yes" if r.converged else "no", _fmt(r.total_s, 0), r.max_rhat_at]
                             for r in rows.itertuples()]}],
        "notes": [f"{ok} of {len(rows)} fits meet every target."],
        "seconds": [float(s) for s in rows["total_s"]],
    }


def measure_speed(cfg: dict, work: Path, done: dict, docs: Path) -> dict:
    """Fit and backtest times from the convergence and accuracy sections (this run's, else
    the stored ones), and forecast times from the main command's fit (this run's, else one
    left in the work folder)."""
    import statistics

    from sloth_bayes import SlothBayes
    from sloth_bayes.datasets import load_leaderboard

    def section(name):
        if name in done:
            return done[name]
        stored = docs / "validation" / f"{name}.json"
        return json.loads(stored.read_text(encoding="utf-8")) if stored.is_file() else None

    rows, commands = [], []
    conv = section("convergence")
    if conv and conv.get("seconds"):
        s = conv["seconds"]
        rows.append(["default fit, embedded table", f"{min(s):.0f}-{max(s):.0f} s (median "
                     f"{statistics.median(s):.0f} s, {len(s)} seeds)", conv["commands"][0]])
    acc = section("accuracy")
    for run in (acc or {}).get("runs", []):
        rows.append([f"lofo-1 backtest, seed {run['seed']}", f"{run['seconds']:.0f} s", run["command"]])
    fit = (done.get("demo") or {}).get("fit") or work / "demo" / "fit.nc"
    if Path(fit).is_file():
        model = SlothBayes.load(fit)
        timing = _load_benchmark("forecast_speed").measure(model, load_leaderboard(), cfg["forecast_sizes"],
                                                           repeat=cfg["forecast_repeat"])
        for r in timing.itertuples():
            rows.append([f"forecast of {r.queries} models x {r.benchmarks} benchmarks ({r.draws} draws)",
                         f"{r.seconds:.2f} s", "python benchmarks/forecast_speed.py --fit out/fit.nc"])
        commands.append("python benchmarks/forecast_speed.py --fit out/fit.nc")
    return {"commands": commands or ["python scripts/validation.py --sections convergence,accuracy,demo,speed"],
            "tables": [{"caption": "Wall time, one job at a time", "columns": ["what", "time", "command"],
                        "rows": rows}],
            "notes": []}


# --- the page -------------------------------------------------------------------------------
def _table(t: dict) -> str:
    lines = [f"*{t['caption']}*", "", "| " + " | ".join(t["columns"]) + " |",
             "|" + "---|" * len(t["columns"])]
    for r in t["rows"]:
        lines.append("| " + " | ".join(str(v) for v in r) + " |")
    return "\n".join(lines)


def render(records: dict[str, dict], quick: bool = False) -> str:
    out = [
        "# Validation",
        "",
        "What the default model achieves on the embedded leaderboard table: accuracy and "
        "calibration on held-out families, convergence and speed. Every section says how it was "
        "measured and the command that regenerates it; `python scripts/validation.py` refreshes "
        "the whole page (about an hour on 2 cores), `--sections NAME,...` some sections. The "
        "protocols are those of the Sloth paper: a held-out group of families keeps, in training, "
        "only the smallest model of each of its sub-families (lofo-1) or none (zero-shot), and "
        "every other score of the group is forecast and scored. MAE is of the posterior "
        "predictive median, in score points (0-100).",
    ]
    if quick:
        out += ["", "**Quick run: reduced draws and a subset of groups. Not to be reported.**"]
    for name in SECTIONS:
        rec = records.get(name)
        if rec is None:
            continue
        out += ["", f"## {TITLES[name]}", ""]
        meta = [f"measured {rec.get('measured', '?')}", f"on {rec.get('machine', '?')}"]
        if rec.get("version"):
            meta.append(f"sloth_bayes {rec['version']}" + (f" ({rec['commit']})" if rec.get("commit") else ""))
        out.append("Regenerate:")
        out += ["", "```bash", *rec["commands"], "```", "", "; ".join(meta) + "."]
        for t in rec["tables"]:
            out += ["", _table(t)]
        for n in rec.get("notes", []):
            out += ["", n]
    return "\n".join(out) + "\n"


def write_page(docs: Path, quick: bool = False) -> Path:
    records = {}
    for name in SECTIONS:
        f = docs / "validation" / f"{name}.json"
        if f.is_file():
            records[name] = json.loads(f.read_text(encoding="utf-8"))
    page = docs / "validation.md"
    page.write_text(render(records, quick), encoding="utf-8")
    return page


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sections", default=",".join(SECTIONS), help=f"comma list of {', '.join(SECTIONS)}")
    p.add_argument("--quick", action="store_true", help="reduced draws and groups: a smoke run")
    p.add_argument("--docs", default=None, help="folder of validation.md (default docs/, or "
                                                "scratch/validation_quick/ with --quick)")
    p.add_argument("--work", default=None, help="folder for backtest and fit outputs")
    p.add_argument("--render", action="store_true", help="only rewrite the page from the stored numbers")
    args = p.parse_args(argv)
    docs = Path(args.docs) if args.docs else ROOT / ("scratch/validation_quick" if args.quick else "docs")
    if args.render:
        print(write_page(docs, args.quick))
        return 0
    names = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = sorted(set(names) - set(SECTIONS))
    if unknown:
        p.error(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    cfg = settings(args.quick)
    work = Path(args.work) if args.work else docs / "validation_work" if args.quick else ROOT / "scratch" / "validation"
    work.mkdir(parents=True, exist_ok=True)
    (docs / "validation").mkdir(parents=True, exist_ok=True)

    import numpyro

    numpyro.set_host_device_count(4)  # before JAX starts: one CPU device per chain
    import sloth_bayes

    stamp = {"measured": date.today().isoformat(), "machine": machine(),
             "version": sloth_bayes.__version__, "commit": commit(), "quick": args.quick}
    done: dict[str, dict] = {}
    steps = {
        "accuracy": lambda: measure_accuracy(cfg, work, "lofo-1"),
        "zero_shot": lambda: measure_accuracy(cfg, work, "zero-shot"),
        "future": lambda: measure_future(cfg, work),
        "families": lambda: measure_families(cfg, work),
        "demo": lambda: measure_demo(cfg, work),
        "convergence": lambda: measure_convergence(cfg, work),
        "speed": lambda: measure_speed(cfg, work, done, docs),
    }
    for name in SECTIONS:  # the page's order; speed last, from the others' timings
        if name not in names:
            continue
        t0 = time.perf_counter()
        print(f"[validation] {name} ...", file=sys.stderr, flush=True)
        done[name] = {**steps[name](), **stamp}
        record = {k: v for k, v in done[name].items() if k != "fit"}  # no local paths in the docs
        (docs / "validation" / f"{name}.json").write_text(json.dumps(record, indent=1) + "\n",
                                                          encoding="utf-8")
        print(f"[validation] {name}: {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    print(write_page(docs, args.quick))
    return 0


if __name__ == "__main__":
    sys.exit(main())
