"""sloth_bayes: Bayesian skills scaling laws that forecast LLM benchmark scores with honest
uncertainty (NumPyro hierarchical model, NUTS on JAX, ArviZ diagnostics).

The public names below are imported on first use, so that ``import sloth_bayes`` (and
``sloth-bayes --help``) does not start JAX.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

_EXPORTS = {
    "DataError": "errors",
    "FitFileError": "errors",
    "NotFittedError": "errors",
    "ModelConfig": "model",
    "Priors": "model",
    "load_leaderboard": "datasets",
    "SamplerConfig": "inference",
    "SlothBayes": "estimator",
    "load_fit": "io",
    "read_table": "data",
    "save_fit": "io",
    "validate_table": "data",
}
__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:  # pragma: no cover
    from .data import read_table, validate_table
    from .errors import DataError, FitFileError, NotFittedError
    from .estimator import SlothBayes
    from .inference import SamplerConfig
    from .io import load_fit, save_fit
    from .datasets import load_leaderboard
    from .model import ModelConfig, Priors


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
