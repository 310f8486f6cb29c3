"""``tools/<name>.py`` as a module for the tests (``tools/`` is a folder of scripts, not a package)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

TOOLS = Path(__file__).resolve().parents[1] / "tools"


def load(name: str):
    """A fresh module object of ``tools/<name>.py`` (each call runs the file again)."""
    spec = importlib.util.spec_from_file_location(name, TOOLS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
