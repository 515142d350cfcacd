"""Saving and loading fits: a netCDF file that ArviZ/xarray open without this package.

The configuration (model, sampler, encoding of families and benchmarks, seed) is stored
as JSON attributes of the root group; :func:`load_fit` refuses files that lack them or
miss the groups a forecast needs, so a foreign or truncated file fails loudly, not later.
"""

from __future__ import annotations

import json
from pathlib import Path

import xarray as xr

from .utils import atomic_path

FORMAT = "sloth_bayes.fit/2"
REQUIRED_ATTRS = ("sloth_bayes_format", "sloth_bayes_config", "sloth_bayes_encoding")
REQUIRED_VARS = ("slopes", "alpha", "alpha_coarse", "loadings", "difficulty", "sigma_bench")


class FitFileError(ValueError):
    """A file is not a readable sloth_bayes fit."""


def save_fit(idata: xr.DataTree, path) -> Path:
    """Write the fit atomically (a crash mid-write leaves any previous file intact)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        idata.to_netcdf(tmp, engine="h5netcdf")
    return path


def load_fit(path) -> xr.DataTree:
    """Read and verify a fit written by :func:`save_fit` (fully loaded into memory)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no fit file at {path}")
    try:
        tree = xr.open_datatree(path, engine="h5netcdf")
        tree = tree.load()
        tree.close()
    except Exception as exc:  # h5py/netCDF raise many types for a corrupt file
        raise FitFileError(
            f"{path} is not a readable netCDF file ({type(exc).__name__}: {exc}); "
            "re-create it with `sloth-bayes fit`."
        ) from exc
    missing = [a for a in REQUIRED_ATTRS if a not in tree.attrs]
    if missing:
        raise FitFileError(
            f"{path} is a netCDF file but not a sloth_bayes fit (missing attributes "
            f"{', '.join(missing)}); give a file written by `sloth-bayes fit` or `SlothBayes.save`."
        )
    if tree.attrs["sloth_bayes_format"] != FORMAT:
        raise FitFileError(
            f"{path} has format {tree.attrs['sloth_bayes_format']!r}; this version of sloth_bayes "
            f"reads {FORMAT!r} only: refit the table with this version (`sloth-bayes fit`)."
        )
    if "posterior" not in tree.children or any(
        v not in tree["posterior"].data_vars for v in REQUIRED_VARS
    ):
        raise FitFileError(f"{path} lacks the posterior draws a forecast needs; re-fit it.")
    json.loads(tree.attrs["sloth_bayes_encoding"])  # must parse
    return tree
