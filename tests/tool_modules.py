"""``tools/<name>.py`` (or ``benchmarks/<name>.py``) as a module for the tests: folders of scripts, not packages."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load(name: str, folder: str = "tools"):
    """A fresh module object of ``<folder>/<name>.py`` (each call runs the file again)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / folder / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
