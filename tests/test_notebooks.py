"""The notebooks run top to bottom in a fresh kernel, in quick mode (SLOTH_BAYES_QUICK=1), on
the embedded real table. Each runs in a temporary folder (they write figures and reports).

Committed outputs, when there are any, must come from a full run: small, free of errors, and
not in quick mode.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
ALL = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))
EXPECTED = [
    "01_forecast_quickstart.ipynb",
    "02_posterior_diagnostics.ipynb",
    "03_reporting_credible_intervals.ipynb",
    "04_skills_and_post_training.ipynb",
    "05_do_skills_saturate.ipynb",
]
MAX_BYTES = 1_000_000


def _texts(nb) -> list[str]:
    """The text of every stored output (streams, plain-text results, errors)."""
    out = []
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            if o.output_type == "stream":
                out.append(o.text)
            elif o.output_type in ("execute_result", "display_data"):
                out.append(str(o.get("data", {}).get("text/plain", "")))
            elif o.output_type == "error":
                out.append(f"{o.ename}: {o.evalue}")
    return out


def test_notebooks_present_and_well_formed():
    assert set(EXPECTED) <= set(ALL), f"missing notebooks: {sorted(set(EXPECTED) - set(ALL))}"
    for name in ALL:
        path = NOTEBOOKS / name
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        assert nb.metadata["kernelspec"]["name"] == "python3"
        assert nb.cells[0].cell_type == "markdown" and "SLOTH_BAYES_QUICK" in nb.cells[0].source, name
        code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
        assert "SLOTH_BAYES_QUICK" in code, name
        assert "plt.show()" not in code
        # stored outputs, if any: small, from a full run, without errors
        assert path.stat().st_size < MAX_BYTES, f"{name}: {path.stat().st_size} bytes"
        errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
                  if o.output_type == "error"]
        assert not errors, f"{name} has stored errors"
        assert not any("quick mode" in t for t in _texts(nb)), f"{name} has outputs of a quick run"


@pytest.mark.parametrize("name", EXPECTED)
def test_notebook_runs(name, tmp_path, monkeypatch):
    monkeypatch.setenv("SLOTH_BAYES_QUICK", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("CI", os.environ.get("CI", "1"))  # no progress bars in the kernel
    # programs the notebooks share with each other compile once (the session's JAX cache)
    import jax

    cache = jax.config.jax_compilation_cache_dir
    if cache:
        monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", cache)
        monkeypatch.setenv("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "1")
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    t0 = time.perf_counter()
    client.execute()  # raises CellExecutionError with the failing cell and traceback
    elapsed = time.perf_counter() - t0
    texts = _texts(nb)
    assert not [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    # real data, never a silent fall-back on the simulated table
    assert not any("simulated" in t.lower() for t in texts), f"{name} used the simulated table"
    assert any("leaderboard" in t.lower() for t in texts), f"{name}: no real table read"
    print(f"{name}: {elapsed:.0f} s")
