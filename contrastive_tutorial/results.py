"""Measured results: each chapter records its headline numbers; the book's "Results" page reads them.

A chapter calls :func:`record` with its profile and the numbers it has just measured and
printed. The numbers go to ``<chapter>.<profile>.json`` in :func:`results_dir`, each with the
time it was measured, so the Results page shows what the last build measured and nothing typed
by hand. What the papers report, and the full-profile setting that reproduces it, is in
:data:`PAPERS`.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import numbers
import os
import re
from pathlib import Path

from . import smoke
from .profiles import CHAPTERS, Profile

__all__ = ["PAPERS", "results_dir", "record", "load", "results_table", "to_markdown"]

# chapter -> what the paper reports, and the full profile's setting for it
PAPERS: dict[str, dict[str, str]] = {
    "infonce": {
        "title": "InfoNCE and temperature",
        "paper": "Wang & Isola: alignment and uniformity track downstream accuracy (no single headline number)",
        "full": "ResNet-18 on CIFAR-10, the temperature sweep with 3 seeds",
    },
    "simclr": {
        "title": "SimCLR intuition",
        "paper": "ImageNet linear probe, top-1: 69.3 % (ResNet-50), 76.5 % (ResNet-50 4x)",
        "full": "ResNet-18 on CIFAR-10, batch 512, linear probe and kNN (one seed)",
    },
    "beyond": {
        "title": "Beyond negatives",
        "paper": "ImageNet linear probe, ResNet-50: MoCo 60.6, SwAV 75.3, BYOL 74.3, SimSiam 71.3, Barlow Twins 73.2 (%)",
        "full": "ResNet-18 on CIFAR-10, the five methods with the same budget",
    },
    "simcse": {
        "title": "SimCSE",
        "paper": "average STS Spearman, BERT-base: unsupervised 76.25, supervised 81.57",
        "full": "bert-base-uncased, wiki1m (unsupervised), NLI triples (supervised), seven STS tasks",
    },
    "promptbert": {
        "title": "PromptBERT",
        "paper": "average STS Spearman, unsupervised BERT-base: 78.54",
        "full": "bert-base-uncased, template denoising and contrast on wiki1m, seven STS tasks",
    },
    "scl": {
        "title": "SCL fine-tuning",
        "paper": "few-shot GLUE with RoBERTa-large: gains over cross-entropy, largest with 20 examples (paper's Table 2)",
        "full": "roberta-large on SST-2, 20 / 100 / 1000 examples per class, 5 seeds",
    },
    "adversarial": {
        "title": "Adversarial contrastive learning",
        "paper": "SCAL: +1.75 GLUE average over BERT-base; USCAL: 77.29 average STS Spearman (BERT-base)",
        "full": "bert-base-uncased on SST-2 (all data, 3 seeds); USCAL on wiki1m, seven STS tasks",
    },
    "sccl": {
        "title": "SCCL",
        "paper": "clustering accuracy: AG News 88.2, SearchSnippets 85.2, StackOverflow 75.5, Biomedical 46.2 (%)",
        "full": "distilbert-base-nli-stsb-mean-tokens, the eight sets, 1,000 steps of batch 400",
    },
}

_ENV = "CT_RESULTS_DIR"


def results_dir() -> Path:
    """Where records go: ``$CT_RESULTS_DIR``; else ``results`` in the run store ``$CT_RUNS_DIR``
    (:mod:`~contrastive_tutorial.runs`), beside the runs they come from; else ``_build/results``
    of the book around the working directory (the folder holding ``_config.yml``); else
    ``~/.cache/contrastive_tutorial/results``."""
    if os.environ.get(_ENV):
        return Path(os.environ[_ENV])
    if os.environ.get("CT_RUNS_DIR"):
        return Path(os.environ["CT_RUNS_DIR"]) / "results"
    for folder in (Path.cwd(), *Path.cwd().parents):
        if (folder / "_config.yml").exists() and (folder / "_toc.yml").exists():
            return folder / "_build" / "results"
    return Path.home() / ".cache" / "contrastive_tutorial" / "results"


def record(profile: Profile, measure: str, value: float, unit: str = "") -> None:
    """Record ``measure = value`` for ``profile``'s chapter and profile, with the time (checked, but not
    written, in smoke mode)."""
    if not isinstance(profile, Profile):
        raise TypeError(f"profile must be the chapter's Profile (ct.profile(...)), got {type(profile).__name__}")
    if profile.chapter not in CHAPTERS:
        raise ValueError(f"profile.chapter must be one of {sorted(CHAPTERS)}, got {profile.chapter!r}")
    if not isinstance(measure, str) or not measure:
        raise ValueError(f"measure must be a non-empty name, got {measure!r}")
    if not isinstance(profile.name, str) or not re.fullmatch(r"[A-Za-z0-9_-]+", profile.name):
        raise ValueError(f"profile.name must be a plain name (letters, digits, _ and -), got {profile.name!r}")
    if isinstance(value, bool) or not isinstance(value, numbers.Real):  # numpy scalars are Real; True, "0.5", arrays not
        raise TypeError(f"value of {measure!r} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"value of {measure!r} must be finite, got {value}")
    if smoke.active():  # random weights: a smoke run's numbers are never recorded
        return
    path = results_dir() / f"{profile.chapter}.{profile.name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    records = _read(path) if path.exists() else {}
    records[measure] = {"value": value, "unit": unit, "device": str(profile.device),
                        "recorded": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    path.write_text(json.dumps(records, indent=1) + "\n")


def _read(path: Path) -> dict:
    try:
        records = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: not a results file ({error}); delete it to start afresh") from error
    if not isinstance(records, dict):
        raise ValueError(f"{path}: not a results file (expected a JSON object of measures)")
    return records


def load(directory: Path | str | None = None) -> "pd.DataFrame":
    """Every record under ``directory`` (default :func:`results_dir`): one row per measure, with
    columns ``chapter, profile, measure, value, unit, device, recorded``."""
    import pandas as pd

    folder = Path(directory) if directory is not None else results_dir()
    rows = []
    for path in sorted(folder.glob("*.json")) if folder.exists() else []:
        chapter, _, profile_name = path.stem.partition(".")
        for measure, entry in _read(path).items():
            rows.append({"chapter": chapter, "profile": profile_name, "measure": measure, **entry})
    columns = ["chapter", "profile", "measure", "value", "unit", "device", "recorded"]
    return pd.DataFrame(rows, columns=columns)


def results_table(records: "pd.DataFrame", profile_name: str = "quick") -> "pd.DataFrame":
    """One row per chapter in book order: the paper's headline, the full-profile setting, and the
    ``profile_name`` measures recorded for it (``"not recorded"`` when a chapter has none)."""
    import pandas as pd

    rows = []
    for chapter, paper in PAPERS.items():
        mine = records[(records["chapter"] == chapter) & (records["profile"] == profile_name)]
        measured = "; ".join(f"{m} {v:.2f}{(' ' + u) if u else ''}" for m, v, u in
                             zip(mine["measure"], mine["value"], mine["unit"])) or "not recorded"
        rows.append({"chapter": paper["title"], "paper": paper["paper"], "full profile": paper["full"],
                     f"measured ({profile_name})": measured})
    return pd.DataFrame(rows).set_index("chapter")


def to_markdown(frame: "pd.DataFrame") -> str:
    """``frame`` as a Markdown table (index first), for a page that renders Markdown output."""
    cells = lambda values: "| " + " | ".join(str(v).replace("|", "/").replace("\n", " ") for v in values) + " |"
    lines = [cells([frame.index.name or "", *frame.columns]), "|" + "---|" * (len(frame.columns) + 1)]
    lines += [cells([index, *row]) for index, row in zip(frame.index, frame.itertuples(index=False))]
    return "\n".join(lines)
