"""The validation page: rendered from its stored numbers, every number with a command."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _validation():
    spec = importlib.util.spec_from_file_location("validation", ROOT / "scripts" / "validation.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_page_is_rendered_from_its_numbers(tmp_path):
    v = _validation()
    shutil.copytree(ROOT / "docs" / "validation", tmp_path / "validation")
    page = v.write_page(tmp_path)
    assert page.read_text() == (ROOT / "docs" / "validation.md").read_text(), (
        "docs/validation.md is out of date: run `python scripts/validation.py --render`")


def test_every_section_says_how_to_regenerate_it():
    v = _validation()
    for name in v.SECTIONS:
        record = json.loads((ROOT / "docs" / "validation" / f"{name}.json").read_text())
        assert record["commands"], name
        for command in record["commands"]:
            assert command.startswith(("sloth-bayes ", "python ")), command
        assert record["tables"] and all(t["rows"] for t in record["tables"]), name
        for key in ("measured", "machine", "version"):
            assert record[key], (name, key)
        assert not record.get("quick"), f"{name}: numbers of a quick run"
        assert "/work/" not in json.dumps(record) and "/tmp/" not in json.dumps(record), name


def test_quick_settings_are_smaller():
    v = _validation()
    quick, full = v.settings(True), v.settings(False)
    assert quick["fit"]["draws"] < full["fit"]["draws"]
    assert len(quick["fit_seeds"]) < len(full["fit_seeds"])
    assert quick["groups"] and full["groups"] is None
    assert full["lofo_sets"] == ["v1", "v2", "all"]


def test_render_marks_a_quick_run():
    v = _validation()
    record = {"commands": ["python x.py"], "tables": [{"caption": "c", "columns": ["a", "b"], "rows": [[1, 2]]}],
              "notes": ["n"], "measured": "2026-01-01", "machine": "m", "version": "0", "commit": None}
    text = v.render({"demo": record}, quick=True)
    assert "Not to be reported" in text and "| a | b |" in text and "| 1 | 2 |" in text
    assert "## " + v.TITLES["demo"] in text and "## " + v.TITLES["accuracy"] not in text
