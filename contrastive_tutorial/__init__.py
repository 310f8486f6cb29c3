"""Companion package of the book "Contrastive Learning in CV and NLP".

Every method in the book is InfoNCE with different choices; :mod:`.losses` holds that
core and the methods built on it. :func:`profile` gives a chapter's quick or full settings.
"""

import warnings

# The book keeps ipywidgets out of its build (widgets do not render in a static page), so
# tqdm.auto's hint to install them, raised when datasets/transformers import it, is noise.
warnings.filterwarnings("ignore", message="IProgress not found")

from . import budget, chapters, data, encoders, evaluate, losses, runs, stats, train, views
from .encoders import RAW_MODEL
from .profiles import CHAPTERS, Profile, device, profile, seed_everything

try:  # the version is defined once, in pyproject.toml
    from importlib.metadata import PackageNotFoundError, version as _version

    __version__ = _version("contrastive-tutorial")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "unknown"
__all__ = [
    "CHAPTERS",
    "RAW_MODEL",
    "budget",
    "chapters",
    "Profile",
    "data",
    "device",
    "encoders",
    "evaluate",
    "losses",
    "profile",
    "runs",
    "seed_everything",
    "stats",
    "train",
    "views",
]
