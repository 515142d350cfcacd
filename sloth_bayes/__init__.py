"""sloth_bayes: Bayesian skills scaling laws that forecast LLM benchmark scores with honest
uncertainty (NumPyro hierarchical model, NUTS on JAX, ArviZ diagnostics)."""

from .data import DataError, read_table, validate_table
from .estimator import NotFittedError, SlothBayes
from .inference import SamplerConfig
from .io import FitFileError, load_fit, save_fit
from .model import ModelConfig

__version__ = "0.1.0"
__all__ = [
    "DataError",
    "FitFileError",
    "ModelConfig",
    "NotFittedError",
    "SamplerConfig",
    "SlothBayes",
    "load_fit",
    "read_table",
    "save_fit",
    "validate_table",
]
