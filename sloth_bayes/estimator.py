"""``SlothBayes``: a thin estimator over the functional core (model, inference, forecast).

>>> from sloth_bayes import SlothBayes
>>> model = SlothBayes(n_skills=3).fit(table, seed=0)          # doctest: +SKIP
>>> model.forecast(queries)                                     # doctest: +SKIP
>>> model.forecast(queries, reference={"MMLU": 0.80})            # doctest: +SKIP
>>> model.prob_above(queries, 0.80)                             # doctest: +SKIP
>>> model.save("fit.nc"); SlothBayes.load("fit.nc")             # doctest: +SKIP
"""

from __future__ import annotations

import json
import secrets
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from .data import check_fittable, check_queries_against, training_summary, validate_queries, validate_table
from .errors import NotFittedError
from .forecast import predictive_draws, summarise
from .inference import SamplerConfig, run_nuts, to_datatree
from .io import FORMAT, load_fit, save_fit, training_ranges
from .model import ModelConfig, encode, make_encoding
from .overestimate import POINT_ATTR, fit_point_law, point_forecast, point_law_from_attrs
from .overestimate import prob_above as _prob_above
from .utils import check_seed


class SlothBayes:
    """Bayesian skills scaling law: fit on a leaderboard table, forecast with intervals.

    Parameters
    ----------
    n_skills : number of latent skills K (overrides ``config.n_skills``).
    config : model structure and priors (:class:`~sloth_bayes.model.ModelConfig`).
    sampler : NUTS settings (:class:`~sloth_bayes.inference.SamplerConfig`); keyword
        arguments ``chains``, ``warmup``, ``draws``, ``chain_method`` ... override fields.
    point_skills : K of the reference point law fitted beside the posterior (the forecast's
        ``point``; default: the model's K).

    Attributes (after ``fit``/``load``)
    ----------
    idata_ : ``xarray.DataTree`` with posterior, sample_stats, log_likelihood (per observed
        cell), observed_data and constant_data; dims ``llm``, ``family``, ``benchmark``,
        ``skill`` ... so ``idata_.posterior["alpha"].sel(family="qwen2")`` works.
    seed_ : the seed used (drawn at random and recorded when ``seed=None``).
    point_law_ : the classic point skills law fitted on the same table
        (:class:`~sloth_bayes.baselines.PointSkillsLaw`), stored in the fit; None if absent.
    """

    def __init__(
        self,
        n_skills: int | None = None,
        *,
        config: ModelConfig | None = None,
        sampler: SamplerConfig | None = None,
        point_skills: int | None = None,
        **sampler_kwargs,
    ):
        config = config or ModelConfig()
        if n_skills is not None:
            config = replace(config, n_skills=int(n_skills))
        self.config = config
        self.sampler = replace(sampler or SamplerConfig(), **sampler_kwargs)
        self.point_skills = point_skills
        self.idata_ = None

    # -- fitting ---------------------------------------------------------------------------
    def fit(
        self,
        table: pd.DataFrame,
        *,
        benchmarks=None,
        floors=None,
        n_items=None,
        seed: int | None = 0,
        progress_bar: bool | None = None,
    ) -> "SlothBayes":
        """Validate ``table`` (wide, one row per LLM), sample the posterior, fit the
        reference point law on the same table (:meth:`fit_point`), return self."""
        clean, meta = validate_table(table, benchmarks, floors=floors, n_items=n_items)
        check_fittable(clean, meta, self.config.n_skills)
        if seed is None:
            seed = secrets.randbelow(2**31)
        elif isinstance(seed, (int, np.integer)):  # a JAX key passes as it is
            seed = check_seed(seed)
        enc = make_encoding(clean, meta, self.config)
        data = encode(clean, enc, self.config.n_skills)
        mcmc, info = run_nuts(data, self.config, self.sampler, seed, progress_bar=progress_bar)
        idata = to_datatree(mcmc, data, enc, self.config, max_tree_depth=self.sampler.max_tree_depth)
        idata.attrs["sloth_bayes_training"] = json.dumps(training_summary(clean))
        self._set_fit(idata, enc, info, seed)
        return self.fit_point(clean, floors=floors, seed=seed)

    def fit_point(self, table: pd.DataFrame, *, floors=None, seed=None) -> "SlothBayes":
        """Fit the classic point skills law (the paper's method: K skills, shared slopes,
        sub-family intercepts, by optimisation) on ``table``, the fit's training table, on
        the fit's benchmarks, and store it in the fit (attribute ``sloth_bayes_point``):
        the forecast's ``point``. :meth:`fit` calls it; call it yourself only for a fit made
        another way (e.g. a backtest fold's)."""
        self._check_fitted()
        enc = json.loads(self.idata_.attrs["sloth_bayes_encoding"])
        benches = list(enc["benchmarks"])
        given = dict(zip(benches, enc.get("floor", [])))
        given.update(floors or {})
        seed = self.idata_.attrs.get("seed", 0) if seed is None else seed
        law = fit_point_law(table, benches, floors=given, n_skills=self.point_skills or self.config.n_skills,
                            seed=seed)
        self.idata_.attrs[POINT_ATTR] = json.dumps(law.to_dict())
        return self

    def _set_fit(self, idata, enc, info: dict, seed) -> "SlothBayes":
        """Make ``idata`` (a fit's DataTree, from :meth:`fit` or another sampler run, e.g. a
        backtest fold) this model's fit: record configuration, encoding, info and seed."""
        idata.attrs.update(
            {
                "sloth_bayes_format": FORMAT,
                "sloth_bayes_config": json.dumps(self.config.to_dict()),
                "sloth_bayes_sampler": json.dumps(self.sampler.to_dict()),
                "sloth_bayes_encoding": json.dumps(enc.to_dict()),
                "sloth_bayes_fit_info": json.dumps(info),
                "seed": int(seed) if isinstance(seed, (int, np.integer)) else str(seed),
            }
        )
        self.idata_ = idata
        return self

    def _check_fitted(self):
        if self.idata_ is None:
            raise NotFittedError("this SlothBayes is not fitted: call fit(table) or SlothBayes.load(path)")

    @property
    def seed_(self):
        self._check_fitted()
        return self.idata_.attrs.get("seed")

    @property
    def point_law_(self):
        self._check_fitted()
        return point_law_from_attrs(self.idata_.attrs)

    @property
    def fit_info_(self) -> dict:
        self._check_fitted()
        return json.loads(self.idata_.attrs.get("sloth_bayes_fit_info", "{}"))

    # -- forecasting -----------------------------------------------------------------------
    def predictive_draws(self, queries: pd.DataFrame, *, seed: int = 0, sources: bool = False):
        """Posterior predictive draws (xarray Dataset: ``y``, ``mu`` ... with dims sample,
        model, benchmark), plus the reference point forecast ``point`` (model, benchmark)
        and its ``point_basis`` (model) when the fit holds a point law. Queries whose family
        contradicts their known sub-family are refused; queries far outside the sizes and
        token counts of the training table are flagged (``ExtrapolationWarning``)."""
        self._check_fitted()
        check_queries_against(validate_queries(queries), training_ranges(self.idata_))
        if isinstance(seed, (int, np.integer)):
            seed = check_seed(seed)
        draws = predictive_draws(self.idata_, queries, seed=seed, sources=sources)
        law = self.point_law_
        if law is None:
            warnings.warn("this fit stores no reference point law: `point` and `p_overestimate` "
                          "are NaN (SlothBayes.fit_point(table) adds it)", stacklevel=2)
            return draws
        benches = [str(b) for b in draws["benchmark"].to_numpy()]
        point, basis = point_forecast(law, queries, benches)
        return draws.assign(point=(("model", "benchmark"), point), point_basis=(("model",), basis.astype(str)))

    def forecast(self, queries: pd.DataFrame, *, seed: int = 0, reference=None, sources: bool = True) -> pd.DataFrame:
        """Forecast table: one row per query model x benchmark with ``mean``, ``median``,
        central 50%/90% intervals, ``mean_noiseless``, ``point`` (the classic point skills
        law fitted on the same table) and ``p_overestimate`` = P(truth < point), then
        ``family_kind``, ``point_basis`` (``point``'s intercept: ``sub-family``, ``coarse
        family`` for a new sub-family, ``population`` for a new family) and the queries'
        descriptive columns (:func:`~sloth_bayes.forecast.summarise`).

        ``reference``: a forecast to judge -- a number, the name of a column of ``queries``
        (one value per model), or ``{benchmark: number or column}`` -- adds ``reference`` and
        ``p_below_reference`` = P(truth < reference) (e.g. a vendor's claimed score).

        ``sources``: why each forecast is uncertain: ``share_efficiency``,
        ``share_deviation`` (the extrapolation's distance), ``share_instruct``, ``share_shared_law``,
        ``share_noise`` (shares of the predictive variance) and ``main_source`` (the largest;
        ``population`` for a new family's efficiency).
        """
        return summarise(self.predictive_draws(queries, seed=seed, sources=sources), queries, reference=reference)

    def prob_above(self, queries: pd.DataFrame, threshold, *, seed: int = 0) -> pd.DataFrame:
        """P(score > threshold) per query x benchmark (``model, benchmark, threshold,
        p_above``), for decisions: ``threshold`` as ``reference`` of :meth:`forecast`.

        >>> model.prob_above(queries, {"MMLU": 0.80})       # doctest: +SKIP
        """
        return _prob_above(self.predictive_draws(queries, seed=seed, sources=False), threshold, queries)

    # -- persistence -----------------------------------------------------------------------
    def save(self, path) -> Path:
        """Write the fit to a netCDF file (atomic)."""
        self._check_fitted()
        return save_fit(self.idata_, path)

    @classmethod
    def load(cls, path) -> "SlothBayes":
        """Read a fit written by :meth:`save` (verified: foreign files are refused)."""
        idata = load_fit(path)
        model = cls(
            config=ModelConfig.from_dict(json.loads(idata.attrs["sloth_bayes_config"])),
            sampler=SamplerConfig.from_dict(json.loads(idata.attrs.get("sloth_bayes_sampler", "{}"))),
        )
        model.idata_ = idata
        return model

    def __repr__(self) -> str:
        state = "fitted" if self.idata_ is not None else "not fitted"
        return f"SlothBayes(n_skills={self.config.n_skills}, {state})"
