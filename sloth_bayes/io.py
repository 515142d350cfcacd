"""Saving and loading fits: a netCDF file that ArviZ/xarray open without this package.

The configuration (model, sampler, encoding of families and benchmarks, seed) is stored
as JSON attributes of the root group; :func:`load_fit` refuses files that lack them or
miss the groups a forecast needs, so a foreign or truncated file fails loudly, not later.
:func:`save_fit` writes a temporary file next to the target, reads it back, flushes it to
disk and renames it over the target: an interrupted save leaves the previous file intact.
"""

from __future__ import annotations

import json
from pathlib import Path

from .errors import FitFileError
from .utils import atomic_path

FORMAT = "sloth_bayes.fit/2"
REQUIRED_ATTRS = ("sloth_bayes_format", "sloth_bayes_config", "sloth_bayes_encoding")
REQUIRED_VARS = ("slopes", "alpha", "alpha_coarse", "loadings", "difficulty", "sigma_bench")

__all__ = ["FORMAT", "FitFileError", "load_fit", "save_fit", "training_ranges"]


def save_fit(idata, path) -> Path:
    """Write the fit atomically (a crash mid-write leaves any previous file intact).

    The temporary file is opened again and checked for the attributes :func:`load_fit`
    needs before it replaces ``path``.
    """
    import xarray as xr

    path = Path(path)
    with atomic_path(path) as tmp:
        idata.to_netcdf(tmp, engine="h5netcdf")
        with xr.open_datatree(tmp, engine="h5netcdf") as back:
            lost = [a for a in REQUIRED_ATTRS if a in idata.attrs and a not in back.attrs]
        if lost:
            raise OSError(f"writing {path} lost the attributes {', '.join(lost)}; nothing was replaced")
    return path


def load_fit(path):
    """Read and verify a fit written by :func:`save_fit` (fully loaded into memory)."""
    import xarray as xr

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no fit file at {path}")
    if path.is_dir():
        raise FitFileError(f"{path} is a folder, not a fit file: give the .nc file written by `sloth-bayes fit`.")
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


def training_ranges(tree) -> dict:
    """What a fit has seen of its training table, for checking queries against it.

    Returns a dict with ``families`` (sub-family -> family), ``size`` and ``tokens``
    (``[lowest, highest]`` over the training LLMs, or None when unknown). Fits saved
    before the ranges were recorded give the families from their encoding and no ranges.
    """
    attrs = tree.attrs
    if "sloth_bayes_training" in attrs:
        return json.loads(attrs["sloth_bayes_training"])
    try:
        enc = json.loads(attrs["sloth_bayes_encoding"])
        families = {s: enc["coarse"][c] for s, c in zip(enc["subfamilies"], enc["sub_coarse"])}
    except (KeyError, IndexError, TypeError, ValueError):
        families = {}
    return {"families": families, "size": None, "tokens": None}
