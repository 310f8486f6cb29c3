"""Install from one place: every notebook's Colab cell and _config.yml agree with pyproject.toml."""

from __future__ import annotations

import json
from pathlib import Path

from tool_modules import load

ROOT = Path(__file__).resolve().parents[1]


def _tool():
    return load("sync_install")


def test_install_cells_and_launch_buttons_agree_with_pyproject():
    tool = _tool()
    assert tool.sync(check=True) == []
    url, version = tool.source()
    assert url.startswith("https://") and version == __import__("contrastive_tutorial").__version__
    for path in (ROOT / "book").glob("*.ipynb"):
        cells = json.loads(path.read_text())["cells"]
        first = next(c for c in cells if c["cell_type"] == "code")
        if path.stem != "results":
            assert f"git+{url}@v{version}" in "".join(first["source"]), path.name


def test_the_check_names_a_notebook_that_disagrees(tmp_path, monkeypatch):
    import shutil

    tool = _tool()
    for name in ("pyproject.toml", "_config.yml"):
        shutil.copy(ROOT / name, tmp_path / name)
    (tmp_path / "book").mkdir()
    notebook = json.loads((ROOT / "book" / "simcse.ipynb").read_text())
    first = next(c for c in notebook["cells"] if c["cell_type"] == "code")
    first["source"] = "".join(first["source"]).replace("@v", "@main-").splitlines(True)
    (tmp_path / "book" / "simcse.ipynb").write_text(json.dumps(notebook))
    monkeypatch.setattr(tool, "ROOT", tmp_path)
    assert any("simcse.ipynb" in p for p in tool.sync(check=True))
    tool.sync(check=False)  # rewrites it
    assert tool.sync(check=True) == []
