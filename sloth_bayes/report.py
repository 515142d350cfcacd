"""A report of a fit: data, convergence, forecasts, figures and calibration evidence.

:func:`write_report` writes ``report.html`` (self-contained: no scripts, no remote files;
figures are PNG files next to it, referenced by relative path) and ``report.md`` (the same
content in Markdown) into a folder, every file atomically. Command line::

    sloth-bayes report fit.nc [--forecast forecast.csv] [--backtest DIR] --out report/

Report-ready tables without optional dependencies (``tabulate``, ``jinja2``):
:func:`forecast_table` formats a forecast as ``median [lower, upper]`` strings and
:func:`render_table` writes any table as Markdown, LaTeX or HTML.

>>> from sloth_bayes.report import forecast_table, render_table
>>> print(render_table(forecast_table(fc), "latex"))          # doctest: +SKIP
"""

from __future__ import annotations

import html
import io
import json
import warnings
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from .utils import atomic_write

__all__ = [
    "convergence_summary",
    "data_summary",
    "forecast_table",
    "register_cli",
    "render_table",
    "write_report",
]

_CSS = """
body { font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; max-width: 1100px;
       margin: 2em auto; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { border-bottom: 2px solid #444; padding-bottom: .2em; }
h2 { border-bottom: 1px solid #bbb; padding-bottom: .1em; margin-top: 2em; }
table { border-collapse: collapse; margin: .8em 0; font-size: 90%; }
th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: right; }
th { background: #f2f2f2; }
td:first-child, th:first-child { text-align: left; }
figure { margin: 1em 0; }
figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: 90%; color: #555; }
.ok { color: #1a7f37; font-weight: bold; }
.warn { color: #b35900; font-weight: bold; }
pre { background: #f7f7f7; padding: .6em; overflow-x: auto; font-size: 85%; }
.note { color: #666; font-size: 90%; }
"""


# -- tables ----------------------------------------------------------------------------------
def _fmt(v, digits: int) -> str:
    if isinstance(v, bool | np.bool_):
        return str(bool(v))
    if isinstance(v, int | np.integer):
        return str(int(v))
    if isinstance(v, float | np.floating):
        if not np.isfinite(v):
            return ""
        if float(v).is_integer() and abs(v) < 1e15:
            return str(int(v))
        if abs(v) >= 1e5 or abs(v) < 10 ** -digits:
            return f"{v:.{max(digits - 1, 1)}e}" if v != 0 else "0"
        return f"{v:.{digits}f}"
    if v is None or v is pd.NA:
        return ""
    return str(v)


def _latex_escape(text: str) -> str:
    repl = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
            "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}
    return "".join(repl.get(c, c) for c in text)


def render_table(df: pd.DataFrame, fmt: str = "markdown", *, digits: int = 3, index: bool = False,
                 caption: str | None = None) -> str:
    """Write a table as ``"markdown"`` (GitHub pipes), ``"latex"`` (booktabs ``tabular``) or
    ``"html"`` (a plain ``<table>``), numbers rounded to ``digits`` decimals.

    Needs neither ``tabulate`` nor ``jinja2`` (which pandas' ``to_markdown``/``to_latex``
    require).
    """
    if index:
        df = df.reset_index()
    cols = [str(c) for c in df.columns]
    rows = [[_fmt(v, digits) for v in row] for row in df.itertuples(index=False, name=None)]
    if fmt == "markdown":
        esc = [[c.replace("|", r"\|") for c in r] for r in [cols, *rows]]
        lines = ["| " + " | ".join(esc[0]) + " |", "|" + "|".join("---" for _ in cols) + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in esc[1:]]
        return "\n".join(lines) + "\n"
    if fmt == "latex":
        align = "".join("r" if pd.api.types.is_numeric_dtype(df[c]) else "l" for c in df.columns)
        lines = [r"\begin{tabular}{" + align + "}", r"\toprule",
                 " & ".join(_latex_escape(c) for c in cols) + r" \\", r"\midrule"]
        lines += [" & ".join(_latex_escape(c) for c in r) + r" \\" for r in rows]
        lines += [r"\bottomrule", r"\end{tabular}"]
        if caption:
            lines = [r"\begin{table}", r"\centering", *lines, r"\caption{" + _latex_escape(caption) + "}",
                     r"\end{table}"]
        return "\n".join(lines) + "\n"
    if fmt == "html":
        out = ["<table>"]
        if caption:
            out.append(f"<caption>{html.escape(caption)}</caption>")
        out.append("<thead><tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in cols) + "</tr></thead>")
        out.append("<tbody>")
        out += ["<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows]
        out.append("</tbody></table>")
        return "\n".join(out) + "\n"
    raise ValueError(f"fmt must be 'markdown', 'latex' or 'html', got {fmt!r}")


def forecast_table(forecast: pd.DataFrame, *, level: int = 90, digits: int = 2, wide: bool = True,
                   benchmarks=None) -> pd.DataFrame:
    """A report-ready forecast table: each cell ``median [lower, upper]`` of the central
    ``level``% interval (50 or 90).

    ``wide=True``: one row per model, one column per benchmark. ``wide=False``: one row per
    model x benchmark with the interval, the classic point forecast ``point`` with
    ``p_overestimate`` (P(truth < point)), a user's ``reference`` with ``p_below_reference``
    where present and, if present, the truth and whether it fell inside.
    """
    if level not in (50, 90):
        raise ValueError("level must be 50 or 90 (the forecast's central intervals)")
    lo, hi = f"lower_{level}", f"upper_{level}"
    missing = [c for c in ("model", "benchmark", "median", lo, hi) if c not in forecast.columns]
    if missing:
        raise ValueError(f"not a forecast table: lacks {', '.join(missing)}")
    fc = forecast if benchmarks is None else forecast[forecast["benchmark"].isin(list(benchmarks))]
    text = [f"{m:.{digits}f} [{a:.{digits}f}, {b:.{digits}f}]" for m, a, b in zip(fc["median"], fc[lo], fc[hi])]
    fc = fc.assign(**{f"median [{level}% interval]": text})
    if wide:
        out = fc.pivot(index="model", columns="benchmark", values=f"median [{level}% interval]")
        out = out.reindex(index=pd.unique(fc["model"]), columns=pd.unique(fc["benchmark"]))
        out.columns.name = None
        return out.reset_index()
    cols = ["model", "benchmark", f"median [{level}% interval]"]
    cols += [c for c in ("point", "p_overestimate", "reference", "p_below_reference") if c in fc]
    out = fc[cols].copy()
    if "truth" in fc:
        out["truth"] = fc["truth"].to_numpy()
        inside = (fc["truth"] >= fc[lo]) & (fc["truth"] <= fc[hi])
        out[f"inside {level}%"] = np.where(fc["truth"].notna(), np.where(inside, "yes", "no"), "")
    return out.reset_index(drop=True)


# -- fit summaries ---------------------------------------------------------------------------
def data_summary(idata) -> pd.DataFrame:
    """What the fit saw: LLMs, sub-families, coarse families, benchmarks, observed cells."""
    post = idata.posterior
    n_llm = idata.constant_data.sizes["llm"]
    n_bench = post.sizes["benchmark"]
    n_cells = idata.observed_data.sizes["cell"]
    rows = [
        ("LLMs", n_llm),
        ("sub-families (Family2)", post.sizes["family"]),
        ("coarse families (Family)", post.sizes["coarse_family"]),
        ("benchmarks", n_bench),
        ("observed cells", n_cells),
        ("share of cells observed", f"{n_cells / max(n_llm * n_bench, 1):.0%}"),
        ("instruct/chat LLMs", int((idata.constant_data["llm_instruct"].to_numpy() > 0.5).sum())),
    ]
    if "llm_missing_tokens" in post.dims:
        rows.append(("LLMs with unknown tokens (latent)", post.sizes["llm_missing_tokens"]))
    return pd.DataFrame(rows, columns=["quantity", "value"])


def _benchmark_counts(idata) -> pd.DataFrame:
    from .forecast import encoding_of

    enc = encoding_of(idata)
    cells = pd.Series(idata.constant_data["cell_benchmark"].to_numpy().astype(str))
    y = idata.observed_data["y"].to_numpy()
    g = pd.Series(y).groupby(cells.to_numpy())
    out = pd.DataFrame({"benchmark": enc.benchmarks, "chance floor": enc.floor, "items": enc.n_items})
    out["observed LLMs"] = out["benchmark"].map(g.count()).fillna(0).astype(int)
    out["mean score"] = out["benchmark"].map(g.mean())
    out["anchor of"] = out["benchmark"].map(
        {b: f"skill_{i + 1}" for i, b in enumerate(enc.anchors)}).fillna("")
    return out


class _Verdict:
    """Minimal stand-in for ``sloth_bayes.diagnostics.convergence_report`` when that module
    is not available: R-hat, ESS and divergences from ArviZ."""

    def __init__(self, idata, rhat_max: float = 1.01, ess_min: float = 400):
        import arviz as az

        post = idata.posterior
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)  # fixed anchor loadings: R-hat NaN
            summ = az.summary(idata, var_names=list(post.data_vars), kind="diagnostics", round_to="none")
        summ = summ.apply(pd.to_numeric, errors="coerce")
        self.frame = summ
        div = int(idata.sample_stats["diverging"].sum()) if "diverging" in idata.sample_stats else 0
        self.warnings = []
        worst_rhat = float(summ["r_hat"].max())
        min_bulk = float(summ["ess_bulk"].min())
        min_tail = float(summ["ess_tail"].min())
        if worst_rhat > rhat_max:
            self.warnings.append(f"largest R-hat {worst_rhat:.3f} > {rhat_max} "
                                 f"({summ['r_hat'].idxmax()})")
        if min_bulk < ess_min or min_tail < ess_min:
            self.warnings.append(f"smallest ESS bulk {min_bulk:.0f} / tail {min_tail:.0f} < {ess_min:.0f}")
        if div:
            self.warnings.append(f"{div} divergent transitions")
        self.ok = not self.warnings
        self.stats = {"max_rhat": worst_rhat, "min_ess_bulk": min_bulk, "min_ess_tail": min_tail,
                      "divergences": div}

    def text(self) -> str:
        head = "Converged: " if self.ok else "NOT converged: "
        s = self.stats
        body = (f"max R-hat {s['max_rhat']:.3f}, min ESS bulk {s['min_ess_bulk']:.0f}, "
                f"tail {s['min_ess_tail']:.0f}, {s['divergences']} divergences")
        return head + body + ("" if self.ok else ". " + "; ".join(self.warnings))

    def to_frame(self) -> pd.DataFrame:
        worst = self.frame.sort_values("r_hat", ascending=False).head(15)
        return worst.reset_index().rename(columns={"index": "parameter"})


def convergence_summary(idata):
    """The convergence verdict of a fit: ``sloth_bayes.diagnostics.convergence_report`` when
    that module exists, else a minimal R-hat / ESS / divergence check. The result has
    ``.ok``, ``.warnings``, ``.text()`` and ``.to_frame()``."""
    try:
        from .diagnostics import convergence_report
    except ImportError:
        return _Verdict(idata)
    return convergence_report(idata)


# -- the report ------------------------------------------------------------------------------
class _Doc:
    """Collects a report as HTML and Markdown side by side, and writes its figures."""

    def __init__(self, out_dir: Path):
        self.out = out_dir
        self.html: list[str] = []
        self.md: list[str] = []
        self.figures: list[str] = []
        self.problems: list[str] = []

    def heading(self, text: str, level: int = 2):
        self.html.append(f"<h{level}>{html.escape(text)}</h{level}>")
        self.md.append("#" * level + " " + text + "\n")

    def para(self, text: str, cls: str | None = None):
        attr = f' class="{cls}"' if cls else ""
        self.html.append(f"<p{attr}>{html.escape(text)}</p>")
        self.md.append(text + "\n")

    def items(self, items: list[str]):
        self.html.append("<ul>" + "".join(f"<li>{html.escape(i)}</li>" for i in items) + "</ul>")
        self.md.append("".join(f"- {i}\n" for i in items))

    def pre(self, text: str):
        self.html.append(f"<pre>{html.escape(text)}</pre>")
        self.md.append("```\n" + text + "\n```\n")

    def table(self, df: pd.DataFrame, digits: int = 3, caption: str | None = None):
        self.html.append(render_table(df, "html", digits=digits, caption=caption))
        if caption:
            self.md.append(f"*{caption}*\n")
        self.md.append(render_table(df, "markdown", digits=digits))

    def figure(self, name: str, caption: str, draw):
        """Draw a figure with ``draw()`` (returns a Figure, an Axes or (Figure, Axes)), save it
        as ``name``.png next to the report and reference it; a failure is noted, not raised."""
        import matplotlib.pyplot as plt

        before = set(plt.get_fignums())
        try:
            res = draw()
            fig = res[0] if isinstance(res, tuple) else getattr(res, "figure", res)
            buf = io.BytesIO()
            fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
        except Exception as exc:  # a figure must not sink the whole report
            msg = f"figure '{name}' could not be drawn: {type(exc).__name__}: {exc}"
            warnings.warn(msg, stacklevel=2)
            self.problems.append(msg)
            self.para(msg, cls="warn")
            return
        finally:
            for num in set(plt.get_fignums()) - before:
                plt.close(num)
        file = f"{name}.png"
        with atomic_write(self.out / file, "wb") as fh:
            fh.write(buf.getvalue())
        self.figures.append(file)
        self.html.append(
            f'<figure><img src="{html.escape(file)}" alt="{html.escape(caption)}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        )
        self.md.append(f"![{caption}]({file})\n")

    def render(self, title: str) -> tuple[str, str]:
        body = "\n".join(self.html)
        page = (
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
            f"<h1>{html.escape(title)}</h1>\n{body}\n</body>\n</html>\n"
        )
        return page, f"# {title}\n\n" + "\n".join(self.md)


def _query_table(fc: pd.DataFrame) -> pd.DataFrame | None:
    """Held-out models of a forecast as a leaderboard-shaped table (metadata + truths), for
    the fan charts; ``None`` if the forecast lacks the metadata columns."""
    from .data import FAMILY, INSTRUCT, MODEL, SIZE, SUBFAMILY, TOKENS

    meta = {"model": MODEL, "family": FAMILY, "family2": SUBFAMILY, "instruct": INSTRUCT,
            "params_b": SIZE, "tokens_t": TOKENS}
    if not {"model", "family", "family2", "params_b"} <= set(fc.columns):
        return None
    first = fc.groupby("model", sort=False).first().reset_index()
    table = first[[c for c in meta if c in first]].rename(columns=meta)
    if "truth" in fc:
        wide = fc.pivot(index="model", columns="benchmark", values="truth")
        table = table.merge(wide, left_on=MODEL, right_index=True, how="left")
    return table


def write_report(fit_path, out_dir, *, forecast=None, backtest_dir=None, title: str | None = None,
                 families=None, seed: int = 0) -> Path:
    """Write ``report.html`` and ``report.md`` (and their PNG figures) into ``out_dir``.

    Parameters
    ----------
    fit_path : a fit saved by ``SlothBayes.save`` / ``sloth-bayes fit``.
    out_dir : folder for the report (created if needed).
    forecast : a forecast CSV (or DataFrame) of ``SlothBayes.forecast``/``sloth-bayes
        forecast``; a ``truth`` column, if present, is compared with the intervals.
    backtest_dir : a folder written by ``sloth-bayes backtest`` (``cells.csv`` with one row
        per scored cell, ``summary.csv``), or a list of them (one per protocol): calibration
        evidence, and when ``point`` over-/under-estimates.
    title : page title. families : sub-families for the skill trajectories (default: those
        of the forecast, then the best-observed ones). seed : seed of the predictive draws.

    Returns
    -------
    pathlib.Path of ``report.html``.
    """
    from . import plots
    from .estimator import SlothBayes

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model = SlothBayes.load(fit_path)
    tree = model.idata_
    config = json.loads(tree.attrs.get("sloth_bayes_config", "{}"))
    sampler = json.loads(tree.attrs.get("sloth_bayes_sampler", "{}"))
    doc = _Doc(out)
    title = title or f"sloth_bayes report: {Path(fit_path).name}"
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    post = tree.posterior
    doc.para(
        f"Fit {Path(fit_path).name}: K = {config.get('n_skills', post.sizes['skill'])} skills, "
        f"{post.sizes['chain']} chains x {post.sizes['draw']} draws (warm-up {sampler.get('warmup', '?')}), "
        f"seed {tree.attrs.get('seed', '?')}. Report written {stamp}."
    )

    # data
    doc.heading("Data")
    doc.table(data_summary(tree))
    doc.table(_benchmark_counts(tree), caption="Benchmarks: chance floors, item counts, observed LLMs")

    # convergence
    doc.heading("Convergence")
    try:
        verdict = convergence_summary(tree)
        text = verdict.text().strip()
        doc.para(text.splitlines()[0], cls="ok" if verdict.ok else "warn")
        if "\n" in text:
            doc.pre("\n".join(text.splitlines()[1:]))  # the rest of the verdict, warnings included
        elif not verdict.ok:
            doc.items(list(verdict.warnings))
        if not verdict.ok:
            doc.para("Do not trust forecasts of a fit that failed these checks: run more warm-up "
                     "and draws, more SVI restarts, or fewer skills, and compare again.", cls="note")
        frame = verdict.to_frame()
        if frame is not None and len(frame):
            if not isinstance(frame.index, pd.RangeIndex):
                frame = frame.reset_index()
            doc.table(frame.head(20), caption="Convergence checks")
        groups = getattr(verdict, "groups", None)
        if isinstance(groups, pd.DataFrame) and len(groups):
            if "max_rhat" in groups:
                groups = groups.sort_values("max_rhat", ascending=False)
            if not isinstance(groups.index, pd.RangeIndex):
                groups = groups.reset_index()
            doc.table(groups.head(15), caption="Per variable (worst R-hat first)")
    except Exception as exc:  # noqa: BLE001 - the report still has value without it
        doc.para(f"Convergence diagnostics unavailable: {type(exc).__name__}: {exc}", cls="warn")
        doc.problems.append(str(exc))
    rank_vars = [v for v in ("slopes", "instruct_shift") if v in post]
    doc.figure("rank_plot", "Rank plots: each chain's fractional-rank ECDF minus the uniform; "
               "chains exploring the same posterior stay close to zero.",
               lambda: plots.rank_plot(tree, rank_vars))

    # forecasts
    fc = None
    if forecast is not None:
        fc = forecast if isinstance(forecast, pd.DataFrame) else pd.read_csv(forecast)
        doc.heading("Forecasts")
        n_models = fc["model"].nunique()
        doc.para(f"{n_models} query model(s), {fc['benchmark'].nunique()} benchmarks. Each cell: "
                 "posterior predictive median [central 90% interval] of the observed score.")
        doc.table(forecast_table(fc, level=90), caption="Forecasts: median [90% interval]")
        long = forecast_table(fc, level=90, wide=False)
        if "truth" in fc and fc["truth"].notna().any():
            ok = fc["truth"].notna()
            inside90 = ((fc.truth >= fc.lower_90) & (fc.truth <= fc.upper_90))[ok].mean()
            inside50 = ((fc.truth >= fc.lower_50) & (fc.truth <= fc.upper_50))[ok].mean()
            mae = (fc["median"] - fc["truth"]).abs()[ok].mean()
            doc.para(f"Against {int(ok.sum())} known scores: {inside90:.0%} inside the 90% interval, "
                     f"{inside50:.0%} inside the 50% interval, MAE of the median {mae:.3f}.")
        if "point" in fc:
            doc.para("point: the classic skills scaling law (point estimate, the paper's method) "
                     "fitted on the same table; p_overestimate: the posterior predictive probability "
                     "that the truth is below it, i.e. that the classic forecast is too high (near 0.5: "
                     "as likely too high as too low).")
        if len(long) <= 60:
            doc.table(long, caption="Forecasts with the classic point forecast and P(it is too high)")
        else:
            doc.para(f"{len(long)} model x benchmark forecasts: the full table (intervals, point, "
                     "p_overestimate) is the forecast CSV.", cls="note")
        doc.figure("forecast_panel", "Forecast intervals (50% thick, 90% thin); colour: probability "
                   "that the classic point forecast is above the truth; crosses: known scores.",
                   lambda: plots.forecast_panel(fc))
        qtable = _query_table(fc)
        if qtable is not None:
            from .data import SUBFAMILY

            fam = str(qtable[SUBFAMILY].iloc[0])
            benches = list(pd.unique(fc["benchmark"]))[:6]

            def fans():
                import matplotlib.pyplot as plt

                cols = min(3, len(benches))
                rows = -(-len(benches) // cols)
                fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 4.0 * rows), layout="constrained",
                                         squeeze=False)
                for a, b in zip(axes.ravel(), benches):
                    plots.fan_chart(model, fam, b, table=qtable, ax=a, seed=seed)
                for a in axes.ravel()[len(benches):]:
                    a.set_visible(False)
                return fig, axes

            doc.figure("fan_charts", f"{fam}: forecast fans against size (median, 50% and 90% bands); "
                       "filled points in the fit, open points held out.", fans)

    # model
    doc.heading("Skills, families and post-training")
    doc.figure("loadings", "Loadings of benchmarks on skills (posterior mean ± half-width of the 90% "
               "interval; anchors fixed).", lambda: plots.loadings_heatmap(tree))
    doc.figure("instruct_shift", "What instruction/chat tuning does to each skill.",
               lambda: plots.instruct_shift_plot(tree))
    doc.figure("family_forest", "Family efficiency on the first skill (90% intervals).",
               lambda: plots.family_forest(tree))
    fams = list(families) if families is not None else _default_families(tree, fc)
    if fams:
        doc.figure("skill_trajectories", "Skills against size for a few sub-families (90% bands).",
                   lambda: plots.skill_trajectories(tree, fams))
    doc.figure("ppc", "Posterior predictive check per benchmark: observed scores (black) and "
               "replicated data sets (blue).", lambda: plots.ppc_plot(tree, seed=seed, num_samples=30))

    # calibration
    if backtest_dir is not None:
        folders = [backtest_dir] if isinstance(backtest_dir, str | Path) else list(backtest_dir)
        for folder in folders:  # figure names carry the folder's name when there are several
            _calibration_section(doc, Path(folder), name=Path(folder).name if len(folders) > 1 else "")
        _direction_section(doc, [Path(f) for f in folders])

    if doc.problems:
        doc.heading("Problems")
        doc.items(doc.problems)
    page, md = doc.render(title)
    with atomic_write(out / "report.md") as fh:
        fh.write(md)
    with atomic_write(out / "report.html") as fh:
        fh.write(page)
    return out / "report.html"


def _default_families(tree, fc: pd.DataFrame | None, n: int = 3) -> list[str]:
    known = [str(f) for f in tree.posterior["family"].values]
    chosen = []
    if fc is not None and "family2" in fc:
        chosen += [f for f in pd.unique(fc["family2"].astype(str)) if f in known]
    counts = pd.Series(tree.constant_data["llm_family"].to_numpy().astype(str)).value_counts()
    for f in counts.index:
        if len(chosen) >= n:
            break
        if f not in chosen:
            chosen.append(f)
    return chosen[:n]


def _calibration_section(doc: _Doc, folder: Path, name: str = "") -> None:
    from . import plots

    doc.heading("Calibration on held-out families (backtest)" + (f": {name}" if name else ""))
    cells_path, summary_path = folder / "cells.csv", folder / "summary.csv"
    if not cells_path.is_file():
        doc.para(f"No cells.csv in {folder}: no calibration evidence.", cls="warn")
        doc.problems.append(f"backtest folder {folder} has no cells.csv")
        return
    cells = pd.read_csv(cells_path)
    doc.para(f"Backtest folder {folder.name}: {len(cells)} scored cells"
             + (f" of {cells['model'].nunique()} held-out models" if "model" in cells else "") + ".")
    if summary_path.is_file():
        summary = pd.read_csv(summary_path)
        if "level" in summary:
            summary = summary[summary["level"].astype(str).isin(["pooled", "group mean"])]
        doc.table(summary.head(30), caption="Backtest summary (summary.csv)")
    cov = plots.coverage_table(cells)
    doc.table(cov, caption="Empirical coverage of central predictive intervals (from PIT)")
    sets = list(pd.unique(cells["set"])) if "set" in cells else [None]
    for s in sets:
        c = cells if s is None else cells[cells["set"] == s]
        tag = "".join(f"_{x}" for x in (name, s) if x)
        label = "" if s is None else f" ({s})"
        doc.figure(f"calibration{tag}", f"Calibration curve{label}: empirical against nominal coverage.",
                   lambda c=c: plots.calibration_curve(c))
        doc.figure(f"pit{tag}", f"PIT histogram{label}: flat when calibrated.",
                   lambda c=c: plots.pit_histogram(c))
        if {"distance", "abs_error"} <= set(c):
            doc.figure(f"error_distance{tag}", f"Error against extrapolation distance{label}.",
                       lambda c=c: plots.error_vs_distance(c))
        if {"benchmark", "abs_error"} <= set(c):
            doc.figure(f"benchmark_errors{tag}", f"Mean absolute error per benchmark{label}.",
                       lambda c=c: plots.benchmark_errors(c))


def _direction_section(doc: _Doc, folders: list[Path]) -> None:
    """Over- or under-estimated? The signal scores, the guidance table and the reliability
    diagram of ``p_overestimate`` over the backtest folders (one per protocol)."""
    from .overestimate import GUIDANCE_SCENARIOS, guidance_table, read_backtests, reliability_diagram, signal_scores

    folders = [f for f in folders if (f / "cells.csv").is_file()]
    if not folders:
        return
    cells = read_backtests(folders)
    if not {"point", "p_overestimate", "truth", "median"} <= set(cells.columns):
        return
    doc.heading("When is a forecast too high or too low?")
    doc.para("point: the classic skills scaling law fitted on each backtest's training table; "
             "p_overestimate = P(truth < point) under the posterior predictive. AUC 0.5 is a coin; "
             "ECE: expected calibration error over 10 equal-width bins; over_rate_median: share "
             "of cells whose posterior median is above the truth (0.5 when not lopsided).")
    doc.table(signal_scores(cells), caption="Does p_overestimate tell the direction of point's error?")
    doc.figure("reliability", "Reliability of p_overestimate: reported probability against the "
               "observed share of cells with point above the truth (diagonal: calibrated).",
               lambda: reliability_diagram(cells))
    table = guidance_table(cells)
    for sc in ["all", *GUIDANCE_SCENARIOS]:
        rows = table[table["scenario"] == sc].drop(columns=["scenario"])
        if len(rows):
            title = "all cells" if sc == "all" else f"by {sc} ({GUIDANCE_SCENARIOS[sc]})"
            doc.table(rows, caption=f"Over-estimation rate and mean signed error (points) of point "
                                    f"and of the median, {title}")


# -- command line ----------------------------------------------------------------------------
def cmd_report(args) -> int:
    import matplotlib

    matplotlib.use("Agg")  # a command writes files; it never opens windows
    path = write_report(args.fit, args.out, forecast=args.forecast, backtest_dir=args.backtest,
                        title=args.title, seed=args.seed)
    print(f"report -> {path}")
    return 0


def register_cli(subparsers) -> None:
    p = subparsers.add_parser("report", help="write an HTML/Markdown report of a fit (figures as PNG)")
    p.add_argument("fit", help="netCDF file written by `fit`")
    p.add_argument("--forecast", help="forecast CSV written by `forecast` or `demo` (may have a truth column)")
    p.add_argument("--backtest", action="append",
                   help="folder written by `backtest` (cells.csv, summary.csv); repeat for protocols")
    p.add_argument("--out", required=True, help="folder for report.html, report.md and the figures")
    p.add_argument("--title", default=None)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_report)
