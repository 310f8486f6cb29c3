"""The run store: where training runs keep their checkpoints, so that nothing a reader waited for
is lost to a disconnect and a rerun cell loads its finished run instead of training again.

A run is keyed by chapter, profile, run name and its settings (and this package's version):
``<store>/<chapter>/<profile>/<name>-<hash of the settings>.pt``. The file is the checkpoint
that :func:`~contrastive_tutorial.train.train` writes every few minutes and when the run ends;
``train`` resumes from it, or, for a finished run, returns its history and weights without
training. Change a setting and the run gets a new key; change the code and you should start a
new store (or delete the run's file).

The store is ``$CT_RUNS_DIR``; else, on Colab with Google Drive mounted, a folder in Drive
(it survives the end of the Colab session); else ``~/.cache/contrastive_tutorial/runs`` in
the GPU profiles; the quick profile keeps no runs unless ``CT_RUNS_DIR`` is set (its runs take
seconds). CI sets a fresh ``CT_RUNS_DIR`` for every run, so nothing stale is ever read. Smoke runs
(:mod:`.smoke`) keep theirs apart, under ``<profile>-smoke``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from . import smoke
from .checks import env_folder
from .profiles import Profile

__all__ = ["runs_dir", "checkpoint", "DRIVE"]

DRIVE = Path("/content/drive/MyDrive")  # where Colab mounts Google Drive


def runs_dir(profile_name: str = "quick") -> Path | None:
    """The run store's folder (module docstring), or ``None`` when runs are not kept."""
    folder = env_folder("CT_RUNS_DIR")
    if folder is not None:
        return folder
    if DRIVE.is_dir():
        return DRIVE / "contrastive-tutorial-runs"
    if profile_name == "quick":
        return None
    return Path.home() / ".cache" / "contrastive_tutorial" / "runs"


def _key(settings: Mapping[str, Any]) -> str:
    from . import __version__

    text = json.dumps({"settings": dict(settings), "version": __version__}, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def checkpoint(profile: Profile, name: str, settings: Mapping[str, Any] | None = None) -> Path | None:
    """The checkpoint file of run ``name`` of ``profile``'s chapter with ``settings`` (pass it as
    ``checkpoint=`` to a recipe), or ``None`` when the store keeps no runs (:func:`runs_dir`).

    ``settings`` default to the profile's own; add whatever else makes this run differ
    (seed, temperature, ...).
    """
    if not isinstance(profile, Profile):
        raise TypeError(f"profile must be the chapter's Profile (ct.profile(...)), got {type(profile).__name__}")
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.=+-]+", name):
        raise ValueError(f"name must be a non-empty run name of letters, digits and _.=+-, got {name!r}")
    root = runs_dir(profile.name)
    if root is None:
        return None
    settings = dict(profile.settings) if settings is None else {**profile.settings, **settings}
    folder = profile.name + ("-smoke" if smoke.active() else "")  # smoke runs never mix with real ones
    return root / profile.chapter / folder / f"{name}-{_key(settings)}.pt"
