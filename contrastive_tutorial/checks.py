"""Argument checks shared by the package's public functions: one wording for one kind of mistake.

A bad argument gets a ``ValueError`` that names it and says what was expected, before another
library turns it into a silent wrong result (``limit=0`` read as "no limit", an empty sample)
or an error about its own internals.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["count", "fraction", "real", "pair", "env_folder"]


def count(value: Any, name: str, *, minimum: int = 1, optional: bool = False) -> int | None:
    """``value`` as a Python ``int`` of at least ``minimum``; ``None`` passes when ``optional``.

    Booleans and floats are refused (``True`` is not a count, and ``2.0`` hides a mistake).
    """
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        wanted = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ValueError(f"{name} must be {wanted}{' or None' if optional else ''}, got {value!r}")
    return int(value)


def fraction(value: Any, name: str) -> float:
    """``value`` as a ``float`` strictly between 0 and 1 (a share of a data set that leaves both parts non-empty)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)) or not 0 < value < 1:
        raise ValueError(f"{name} must be a fraction strictly between 0 and 1, got {value!r}")
    return float(value)


def real(value: Any, name: str) -> float:
    """``value`` as a finite ``float``; strings, booleans and NaN are refused."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or not np.isfinite(value):
        raise ValueError(f"{name} must be a finite real number, got {value!r}")
    return float(value)


def pair(value: Any, name: str) -> tuple[float, float]:
    """``value`` as a ``(low, high)`` pair of finite numbers (the order is the caller's to check)."""
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != 2:
        raise ValueError(f"{name} must be a pair (low, high) of numbers, got {value!r}")
    try:
        return real(value[0], name), real(value[1], name)
    except ValueError:
        raise ValueError(f"{name} must be a pair (low, high) of finite numbers, got {value!r}") from None


def env_folder(variable: str) -> Path | None:
    """The folder named by environment variable ``variable`` (``None`` when unset or empty).

    Raises ``ValueError`` when it names a file: the data, run and result folders would otherwise
    find nothing there, or fail later with the operating system's "Not a directory"."""
    value = os.environ.get(variable)
    if not value:
        return None
    folder = Path(value).expanduser()
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{variable} must name a folder, got the file {str(folder)!r}")
    return folder
