"""The notebooks run top to bottom in a fresh kernel, in quick mode (SLOTH_BAYES_QUICK=1).

Only the quickstart runs in the default suite; the others fit several models and run under
``pytest -m slow``. Each notebook runs in a temporary folder (they write figures/reports).
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
DEFAULT = {"01_forecast_quickstart.ipynb"}
EXPECTED = {
    "01_forecast_quickstart.ipynb",
    "02_posterior_diagnostics.ipynb",
    "03_reporting_credible_intervals.ipynb",
    "04_skills_and_post_training.ipynb",
}


def _data_available() -> bool:
    from sloth_bayes.datasets import find_leaderboard
    from sloth_bayes.utils import package_data_path

    try:
        find_leaderboard()
        return True
    except FileNotFoundError:
        return package_data_path("simulated_leaderboard.csv").is_file()


def test_notebooks_present_and_clean():
    """All four notebooks exist, are valid nbformat 4, and carry no stored outputs."""
    assert EXPECTED <= set(ALL), f"missing notebooks: {sorted(EXPECTED - set(ALL))}"
    for name in ALL:
        nb = nbformat.read(NOTEBOOKS / name, as_version=4)
        nbformat.validate(nb)
        assert nb.metadata["kernelspec"]["name"] == "python3"
        assert nb.cells[0].cell_type == "markdown" and "SLOTH_BAYES_QUICK" in nb.cells[0].source, name
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, f"{name} has stored outputs"
        code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
        assert "SLOTH_BAYES_QUICK" in code, name
        assert "plt.show()" not in code


@pytest.mark.parametrize(
    "name",
    [n if n in DEFAULT else pytest.param(n, marks=pytest.mark.slow) for n in sorted(EXPECTED)],
)
def test_notebook_runs(name, tmp_path, monkeypatch):
    if not _data_available():
        pytest.skip("no data: set SLOTH_BAYES_DATA or generate data/simulated_leaderboard.csv "
                    "(python -m sloth_bayes.simulate)")
    monkeypatch.setenv("SLOTH_BAYES_QUICK", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("CI", os.environ.get("CI", "1"))  # no progress bars in the kernel
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    t0 = time.perf_counter()
    client.execute()  # raises CellExecutionError with the failing cell and traceback
    elapsed = time.perf_counter() - t0
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    print(f"{name}: {elapsed:.0f} s")
