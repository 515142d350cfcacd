"""Point-forecast baselines fitted on the same training tables as the Bayesian model.

* :class:`PointSkillsLaw` -- the skills scaling law of the Sloth paper without a hierarchy:
  per-sub-family intercepts, slopes shared by all families on standardised
  ``(log size, log tokens, log size * log tokens)``, ``K`` skills, non-negative loadings,
  chance floors, sigmoid link; maximum a posteriori with a light L2 penalty (squared error
  on observed cells only, so no row is dropped for a missing score).
* :class:`FlopsSigmoid` -- per benchmark, a sigmoid in log FLOPs (``6 N D``) with a
  per-sub-family intercept: the strong simple baseline of ``EVALUATION.md``.

Both: ``.fit(table, benchmarks=None)`` (default: every known benchmark column) returns the
fitted object, ``.predict(queries)`` a long DataFrame ``model, benchmark, prediction``.
A query of a sub-family the fit never saw takes the mean intercept of its coarse family's
sub-families; a query of an unknown coarse family takes the mean of all sub-families
(:class:`PointSkillsLaw`, see :meth:`PointSkillsLaw.basis`) or 0 (:class:`FlopsSigmoid`,
whose intercepts are deviations from the benchmark's own). Missing pre-training token counts are filled with the geometric mean
of the counts of the LLM's coarse family in the training table (the global one when the
family has none): a point forecast needs a number, the Bayesian model treats them as latent.

>>> base = PointSkillsLaw(n_skills=2).fit(train)         # doctest: +SKIP
>>> base.predict(queries)                                # doctest: +SKIP
"""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import expit

from .data import FAMILY, MODEL, SIZE, SUBFAMILY, TOKENS, validate_queries, validate_table

__all__ = [
    "BASIS_COARSE",
    "BASIS_POPULATION",
    "BASIS_SUB",
    "FLOPS",
    "FlopsSigmoid",
    "PointSkillsLaw",
    "fill_tokens",
    "log_flops",
    "single_thread_blas",
]

#: FLOPs column of the leaderboard table (units of 1e21); ``6 N D`` when absent.
FLOPS = "FLOPs (1E21)"


_BLAS_PREFIXES = ("scipy_openblas_", "openblas_")
_BLAS_SUFFIXES = ("64_", "")


def _openblas_handles() -> list[tuple]:
    """(get, set) thread-count functions of the OpenBLAS copies loaded in this process."""
    if not sys.platform.startswith("linux"):
        return []
    try:
        with open("/proc/self/maps") as fh:
            paths = sorted({ln.split()[-1] for ln in fh if "openblas" in ln.lower() and "/" in ln})
    except OSError:
        return []
    out = []
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for pre in _BLAS_PREFIXES:
            for suf in _BLAS_SUFFIXES:
                get = getattr(lib, f"{pre}get_num_threads{suf}", None)
                put = getattr(lib, f"{pre}set_num_threads{suf}", None)
                if get is not None and put is not None:
                    get.restype = ctypes.c_int
                    put.argtypes = [ctypes.c_int]
                    out.append((get, put))
                    break
            else:
                continue
            break
    return out


@contextmanager
def single_thread_blas() -> Iterator[None]:
    """Run tiny linear algebra on one BLAS thread (restored afterwards; best effort).

    The baselines' optimisers make thousands of calls on matrices of a few dozen rows;
    on a busy machine OpenBLAS' idle threads spin for each one, and a fit that takes 0.3 s
    alone takes 10-60 s. A no-op where OpenBLAS cannot be found (non-Linux, other BLAS).
    """
    handles = _openblas_handles()
    saved = []
    for get, put in handles:
        try:
            saved.append((put, int(get())))
            put(1)
        except Exception:  # pragma: no cover - foreign BLAS builds
            pass
    try:
        yield
    finally:
        for put, n in saved:
            put(n)


class NotFittedError(RuntimeError):
    """``predict`` was called before ``fit``."""


def _family_log_tokens(table: pd.DataFrame) -> tuple[dict[str, float], float]:
    """Mean log token count per coarse family, and over all LLMs, of a training table."""
    log_t = np.log(pd.to_numeric(table[TOKENS], errors="coerce").to_numpy(float))
    ok = np.isfinite(log_t)
    if not ok.any():
        return {}, 0.0
    fam = table[FAMILY].astype(str).to_numpy()
    per = pd.Series(log_t[ok]).groupby(fam[ok]).mean()
    return {str(k): float(v) for k, v in per.items()}, float(log_t[ok].mean())


def fill_tokens(table: pd.DataFrame, family_log_tokens: dict[str, float], global_log_tokens: float):
    """Log token counts, missing ones filled with their coarse family's mean (else global)."""
    log_t = np.log(pd.to_numeric(table[TOKENS], errors="coerce").to_numpy(float))
    fill = np.array(
        [family_log_tokens.get(str(f), global_log_tokens) for f in table[FAMILY]], dtype=float
    )
    return np.where(np.isfinite(log_t), log_t, fill)


def log_flops(raw: pd.DataFrame, log_tokens: np.ndarray) -> np.ndarray:
    """Natural log of training FLOPs in units of 1e21: the ``FLOPs (1E21)`` column where
    present and positive, else ``6 N D`` (N billions of parameters, D trillions of tokens:
    ``6 * 1e9 * 1e12 = 6e21``) with ``log_tokens`` as filled by :func:`fill_tokens`."""
    computed = np.log(6.0) + np.log(raw[SIZE].to_numpy(float)) + log_tokens
    if FLOPS in raw.columns:
        given = pd.to_numeric(raw[FLOPS], errors="coerce").to_numpy(float)
        with np.errstate(divide="ignore", invalid="ignore"):
            lg = np.log(given)
        return np.where(np.isfinite(lg), lg, computed)
    return computed


def _long(models, benchmarks, pred: np.ndarray) -> pd.DataFrame:
    qi, ji = np.meshgrid(np.arange(len(models)), np.arange(len(benchmarks)), indexing="ij")
    return pd.DataFrame(
        {
            "model": np.asarray(models, dtype=object)[qi.ravel()].astype(str),
            "benchmark": np.asarray(benchmarks, dtype=object)[ji.ravel()].astype(str),
            "prediction": pred[qi.ravel(), ji.ravel()],
        }
    )


#: Which intercept a query's point forecast uses (:meth:`PointSkillsLaw.basis`).
BASIS_SUB, BASIS_COARSE, BASIS_POPULATION = "sub-family", "coarse family", "population"


def _basis(subs, sub_coarse: dict[str, str], q_sub, q_coarse) -> np.ndarray:
    """Per query: its own sub-family's intercept, its coarse family's mean, or the population's."""
    coarse = set(sub_coarse[s] for s in subs)
    return np.array(
        [BASIS_SUB if s in sub_coarse else BASIS_COARSE if c in coarse else BASIS_POPULATION
         for s, c in zip(q_sub, q_coarse)],
        dtype=object,
    )


def _intercepts(subs: list[str], sub_coarse: dict[str, str], values: np.ndarray, q_sub, q_coarse,
                unknown: np.ndarray) -> np.ndarray:
    """Intercept rows for queries: own sub-family, else its coarse family's mean, else ``unknown``."""
    index = {s: i for i, s in enumerate(subs)}
    by_coarse: dict[str, list[int]] = {}
    for s, i in index.items():
        by_coarse.setdefault(sub_coarse[s], []).append(i)
    rows = []
    for sub, coarse in zip(q_sub, q_coarse):
        if sub in index:
            rows.append(values[index[sub]])
        elif coarse in by_coarse:
            rows.append(values[by_coarse[coarse]].mean(axis=0))
        else:
            rows.append(unknown)
    return np.asarray(rows, dtype=float).reshape((len(rows),) + np.shape(unknown))


class PointSkillsLaw:
    """Skills scaling law without hierarchy, fitted by penalised least squares (MAP).

    ``mu_ij = c_j + (1 - c_j) * sigmoid(lambda_j . (alpha_f(i) + B^T x_i) + b_j)`` with
    ``x_i`` the standardised ``(log size, log tokens, product)``, ``alpha_f`` one intercept
    vector per sub-family, ``lambda_j >= 0``. Objective: ``sum (mu_ij - y_ij)^2`` over the
    observed cells ``+ l2 * ||all parameters||^2``, minimised by L-BFGS-B (analytic
    gradient) from ``restarts`` random starts; the best is kept.

    Parameters
    ----------
    n_skills : K (default 2, like the main model's small configurations).
    l2 : penalty weight (light: it only settles the scale trade-off between skills and
        loadings and the level of intercepts vs difficulties).
    restarts, seed, maxiter : optimiser settings.

    Attributes (after ``fit``)
    --------------------------
    params_ : dict ``alpha`` (S, K), ``slopes`` (3, K), ``loadings`` (J, K), ``difficulty`` (J).
    subfamilies_, benchmarks_, floor_, loss_ .

    A query of a sub-family outside the fit uses the mean intercept of its coarse family's
    sub-families, one of an unknown coarse family the mean of all sub-families
    (:meth:`basis` says which). :meth:`to_dict` / :meth:`from_dict` store a fitted law as
    plain JSON-ready numbers (a saved ``SlothBayes`` fit keeps its reference law that way).
    """

    #: Version tag of :meth:`to_dict`'s layout.
    FORMAT = "sloth_bayes.point_skills_law/1"

    def __init__(self, n_skills: int = 2, *, l2: float = 1e-4, restarts: int = 3, seed: int = 0,
                 maxiter: int = 3000):
        self.n_skills = int(n_skills)
        self.l2 = float(l2)
        self.restarts = int(restarts)
        self.seed = seed
        self.maxiter = int(maxiter)
        self.params_ = None

    # covariates with the training standardisation
    def _design(self, table: pd.DataFrame) -> np.ndarray:
        log_s = np.log(table[SIZE].to_numpy(float))
        log_t = fill_tokens(table, self.family_tokens_, self.global_tokens_)
        zs = (log_s - self.size_loc_) / self.size_scale_
        zt = (log_t - self.tokens_loc_) / self.tokens_scale_
        return np.stack([zs, zt, zs * zt], axis=-1)

    def fit(self, table: pd.DataFrame, benchmarks: Sequence[str] | None = None, *,
            floors=None) -> "PointSkillsLaw":
        """Fit on the observed cells of ``benchmarks`` (default: every known benchmark column;
        ``floors``: chance floors overriding or adding to the built-in ones)."""
        with single_thread_blas():
            return self._fit(table, benchmarks, floors)

    def _fit(self, table, benchmarks, floors=None):
        clean, meta = validate_table(table, benchmarks, floors=floors)
        self.benchmarks_ = list(meta.index)
        self.floor_ = meta["floor"].to_numpy(float)
        self.family_tokens_, self.global_tokens_ = _family_log_tokens(clean)
        log_s = np.log(clean[SIZE].to_numpy(float))
        log_t = fill_tokens(clean, self.family_tokens_, self.global_tokens_)
        self.size_loc_, self.size_scale_ = float(log_s.mean()), float(log_s.std() or 1.0)
        self.tokens_loc_, self.tokens_scale_ = float(log_t.mean()), float(log_t.std() or 1.0)
        x = self._design(clean)
        self.subfamilies_ = list(pd.unique(clean[SUBFAMILY].astype(str)))
        self.sub_coarse_ = dict(
            zip(clean[SUBFAMILY].astype(str), clean[FAMILY].astype(str))
        )
        sub = np.array([self.subfamilies_.index(s) for s in clean[SUBFAMILY].astype(str)])
        y = clean[self.benchmarks_].to_numpy(float)
        mask = np.isfinite(y)
        y0 = np.where(mask, y, 0.0)
        n_s, k, n_j = len(self.subfamilies_), self.n_skills, len(self.benchmarks_)
        floor = self.floor_
        shapes = {"alpha": (n_s, k), "slopes": (3, k), "loadings": (n_j, k), "difficulty": (n_j,)}
        sizes = {n: int(np.prod(s)) for n, s in shapes.items()}
        l2 = self.l2

        def unpack(v):
            out, i = {}, 0
            for n, s in shapes.items():
                out[n] = v[i : i + sizes[n]].reshape(s)
                i += sizes[n]
            return out

        def fun(v):
            p = unpack(v)
            theta = p["alpha"][sub] + x @ p["slopes"]  # (N, K)
            logit = theta @ p["loadings"].T + p["difficulty"]
            sig = expit(logit)
            mu = floor + (1.0 - floor) * sig
            r = np.where(mask, mu - y0, 0.0)
            loss = np.sum(r**2) + l2 * np.sum(v**2)
            g_logit = 2.0 * r * (1.0 - floor) * sig * (1.0 - sig)  # (N, J)
            g_theta = g_logit @ p["loadings"]
            g_alpha = np.zeros_like(p["alpha"])
            np.add.at(g_alpha, sub, g_theta)
            grads = {
                "alpha": g_alpha,
                "slopes": x.T @ g_theta,
                "loadings": g_logit.T @ theta,
                "difficulty": g_logit.sum(0),
            }
            g = np.concatenate([grads[n].ravel() for n in shapes]) + 2.0 * l2 * v
            return loss, g

        bounds = []
        for n in shapes:
            bounds += [(0.0, None) if n == "loadings" else (None, None)] * sizes[n]
        rng = np.random.default_rng(self.seed)
        # difficulty start: the logit of each benchmark's mean score above its floor
        frac = np.nanmean(np.where(mask, (y - floor) / (1.0 - floor), np.nan), axis=0)
        frac = np.clip(np.nan_to_num(frac, nan=0.5), 0.02, 0.98)
        best = None
        for _ in range(max(1, self.restarts)):
            v0 = np.concatenate(
                [
                    0.1 * rng.standard_normal(sizes["alpha"]),
                    0.3 * rng.standard_normal(sizes["slopes"]),
                    rng.uniform(0.2, 1.0, sizes["loadings"]),
                    np.log(frac / (1.0 - frac)),
                ]
            )
            res = minimize(fun, v0, jac=True, method="L-BFGS-B", bounds=bounds,
                           options={"maxiter": self.maxiter, "ftol": 1e-12, "gtol": 1e-8})
            if best is None or res.fun < best.fun:
                best = res
        self.params_ = unpack(best.x)
        self.loss_ = float(best.fun)
        return self

    def predict_matrix(self, queries: pd.DataFrame) -> np.ndarray:
        """Predictions as a (query, benchmark) array in :attr:`benchmarks_` order."""
        if self.params_ is None:
            raise NotFittedError("PointSkillsLaw is not fitted: call fit(table) first")
        q = validate_queries(queries)
        x = self._design(q)
        alpha = _intercepts(
            self.subfamilies_, self.sub_coarse_, self.params_["alpha"],
            q[SUBFAMILY].astype(str), q[FAMILY].astype(str), self.params_["alpha"].mean(axis=0),
        )
        theta = alpha + x @ self.params_["slopes"]
        logit = theta @ self.params_["loadings"].T + self.params_["difficulty"]
        return self.floor_ + (1.0 - self.floor_) * expit(logit)

    def predict(self, queries: pd.DataFrame) -> pd.DataFrame:
        """Point forecasts: one row per query model x benchmark (``model, benchmark, prediction``)."""
        pred = self.predict_matrix(queries)
        return _long(queries[MODEL], self.benchmarks_, pred)

    def basis(self, queries: pd.DataFrame) -> np.ndarray:
        """Per query, the intercept its forecast uses: ``"sub-family"`` (its own),
        ``"coarse family"`` (a new sub-family: the mean of its coarse family's sub-families)
        or ``"population"`` (a new family: the mean of all sub-families)."""
        if self.params_ is None:
            raise NotFittedError("PointSkillsLaw is not fitted: call fit(table) first")
        q = validate_queries(queries)
        return _basis(self.subfamilies_, self.sub_coarse_, q[SUBFAMILY].astype(str), q[FAMILY].astype(str))

    _STATE = ("benchmarks_", "floor_", "family_tokens_", "global_tokens_", "size_loc_", "size_scale_",
              "tokens_loc_", "tokens_scale_", "subfamilies_", "sub_coarse_", "loss_")

    def to_dict(self) -> dict:
        """The fitted law as JSON-ready numbers: settings, learned state, parameters."""
        if self.params_ is None:
            raise NotFittedError("PointSkillsLaw is not fitted: call fit(table) first")

        def plain(v):
            if isinstance(v, np.ndarray):
                return v.tolist()
            if isinstance(v, dict):
                return {str(k): plain(x) for k, x in v.items()}
            if isinstance(v, (list, tuple)):
                return [plain(x) for x in v]
            return v.item() if isinstance(v, np.generic) else v

        return {
            "format": self.FORMAT,
            "settings": {"n_skills": self.n_skills, "l2": self.l2, "restarts": self.restarts,
                         "seed": plain(self.seed), "maxiter": self.maxiter},
            "state": {name: plain(getattr(self, name)) for name in self._STATE},
            "params": plain(self.params_),
        }

    @classmethod
    def from_dict(cls, d: dict) -> "PointSkillsLaw":
        """A fitted law from :meth:`to_dict`'s output (refuses another layout)."""
        if d.get("format") != cls.FORMAT:
            raise ValueError(f"not a {cls.FORMAT} record (format {d.get('format')!r})")
        law = cls(**d["settings"])
        for name, value in d["state"].items():
            setattr(law, name, value)
        law.floor_ = np.asarray(law.floor_, dtype=float)
        law.params_ = {k: np.asarray(v, dtype=float) for k, v in d["params"].items()}
        return law


class FlopsSigmoid:
    """Per-benchmark sigmoid in log FLOPs with a per-sub-family intercept.

    For each benchmark ``j`` separately: ``mu = c_j + (1 - c_j) * sigmoid(a_fj + b_j z + d_j)``
    with ``z`` the standardised natural log of FLOPs (see :func:`log_flops`), fitted by least
    squares on the score scale (no logit transform of the data, so 0s and 1s are fine) plus
    ``l2 * sum a_fj^2`` (the intercepts are deviations from ``d_j``); L-BFGS.

    Attributes (after ``fit``): ``coef_`` {benchmark: dict(slope, offset, intercepts {sub:
    a})}, ``benchmarks_``, ``floor_``.
    """

    def __init__(self, *, l2: float = 1e-3, maxiter: int = 2000):
        self.l2 = float(l2)
        self.maxiter = int(maxiter)
        self.coef_ = None

    def fit(self, table: pd.DataFrame, benchmarks: Sequence[str] | None = None) -> "FlopsSigmoid":
        """Fit each benchmark of ``benchmarks`` (default: every known benchmark column)."""
        with single_thread_blas():
            return self._fit(table, benchmarks)

    def _fit(self, table, benchmarks):
        clean, meta = validate_table(table, benchmarks)
        self.benchmarks_ = list(meta.index)
        self.floor_ = meta["floor"].to_numpy(float)
        self.family_tokens_, self.global_tokens_ = _family_log_tokens(clean)
        lt = fill_tokens(clean, self.family_tokens_, self.global_tokens_)
        raw = table.reset_index(drop=True).assign(**{SIZE: clean[SIZE].to_numpy(float)})
        lf = log_flops(raw, lt)
        self.flops_loc_, self.flops_scale_ = float(lf.mean()), float(lf.std() or 1.0)
        z = (lf - self.flops_loc_) / self.flops_scale_
        subs_all = clean[SUBFAMILY].astype(str).to_numpy()
        coarse_all = clean[FAMILY].astype(str).to_numpy()
        self.coef_ = {}
        for j, bench in enumerate(self.benchmarks_):
            y = clean[bench].to_numpy(float)
            ok = np.isfinite(y)
            c = self.floor_[j]
            if not ok.any():
                self.coef_[bench] = {"slope": 0.0, "offset": 0.0, "intercepts": {}, "coarse": {}}
                continue
            subs = list(pd.unique(subs_all[ok]))
            idx = np.array([subs.index(s) for s in subs_all[ok]])
            zj, yj = z[ok], y[ok]
            l2 = self.l2

            def fun(v, idx=idx, zj=zj, yj=yj, c=c, n_sub=len(subs)):
                a, slope, off = v[:n_sub], v[n_sub], v[n_sub + 1]
                sig = expit(a[idx] + slope * zj + off)
                r = c + (1.0 - c) * sig - yj
                g_logit = 2.0 * r * (1.0 - c) * sig * (1.0 - sig)
                g_a = np.bincount(idx, weights=g_logit, minlength=n_sub) + 2.0 * l2 * a
                g = np.concatenate([g_a, [np.sum(g_logit * zj), np.sum(g_logit)]])
                return np.sum(r**2) + l2 * np.sum(a**2), g

            frac = float(np.clip(np.mean((yj - c) / (1.0 - c)), 0.02, 0.98))
            v0 = np.concatenate([np.zeros(len(subs)), [1.0, np.log(frac / (1.0 - frac))]])
            res = minimize(fun, v0, jac=True, method="L-BFGS-B",
                           options={"maxiter": self.maxiter, "ftol": 1e-12, "gtol": 1e-9})
            self.coef_[bench] = {
                "slope": float(res.x[len(subs)]),
                "offset": float(res.x[len(subs) + 1]),
                "intercepts": dict(zip(subs, res.x[: len(subs)].tolist())),
                "coarse": {s: str(coarse_all[subs_all == s][0]) for s in subs},
            }
        return self

    def predict_matrix(self, queries: pd.DataFrame) -> np.ndarray:
        """Predictions as a (query, benchmark) array in :attr:`benchmarks_` order."""
        if self.coef_ is None:
            raise NotFittedError("FlopsSigmoid is not fitted: call fit(table) first")
        q = validate_queries(queries)
        raw = queries.reset_index(drop=True).assign(**{SIZE: q[SIZE].to_numpy(float)})
        lt = fill_tokens(q, self.family_tokens_, self.global_tokens_)
        z = (log_flops(raw, lt) - self.flops_loc_) / self.flops_scale_
        out = np.empty((len(q), len(self.benchmarks_)))
        for j, bench in enumerate(self.benchmarks_):
            co = self.coef_[bench]
            subs = list(co["intercepts"])
            a = _intercepts(
                subs, co["coarse"], np.array([co["intercepts"][s] for s in subs]),
                q[SUBFAMILY].astype(str), q[FAMILY].astype(str), np.array(0.0),
            )
            c = self.floor_[j]
            out[:, j] = c + (1.0 - c) * expit(a + co["slope"] * z + co["offset"])
        return out

    def predict(self, queries: pd.DataFrame) -> pd.DataFrame:
        """Point forecasts: one row per query model x benchmark (``model, benchmark, prediction``)."""
        pred = self.predict_matrix(queries)
        return _long(queries[MODEL], self.benchmarks_, pred)
