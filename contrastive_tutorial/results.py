"""Measured results: each chapter records its headline numbers; the book's "Results" page reads them.

A chapter calls :func:`record` with its profile and the numbers it has just measured and
printed. The numbers go to ``<chapter>.<profile>.json`` in :func:`results_dir`, each with the
time it was measured, so the Results page shows what the last build measured and nothing typed
by hand. What the papers report, and the full-profile setting that aims at it, is in each
chapter's record (:mod:`contrastive_tutorial.chapters`).
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import numbers
import re
from pathlib import Path

from . import smoke
from .checks import env_folder
from .chapters import CHAPTERS as RECORDS
from .profiles import CHAPTERS, Profile
from .stats import Comparison, Estimate

__all__ = ["results_dir", "record", "load", "results_table", "to_markdown"]

_ENV = "CT_RESULTS_DIR"


def results_dir() -> Path:
    """Where records go: ``$CT_RESULTS_DIR``; else ``results`` in the run store ``$CT_RUNS_DIR``
    (:mod:`~contrastive_tutorial.runs`), beside the runs they come from; else ``_build/results``
    of the book around the working directory (the folder holding ``_config.yml``); else
    ``~/.cache/contrastive_tutorial/results``."""
    for variable, below in ((_ENV, ""), ("CT_RUNS_DIR", "results")):
        folder = env_folder(variable)
        if folder is not None:
            return folder / below
    for folder in (Path.cwd(), *Path.cwd().parents):
        if (folder / "_config.yml").exists() and (folder / "_toc.yml").exists():
            return folder / "_build" / "results"
    return Path.home() / ".cache" / "contrastive_tutorial" / "results"


def record(profile: Profile, measure: str, value: "float | Estimate | Comparison", unit: str = "") -> None:
    """Record ``measure = value`` for ``profile``'s chapter and profile, with the time (checked, but not
    written, in smoke mode). A :class:`~contrastive_tutorial.stats.Estimate` is recorded with its
    interval and the seeds and test items it rests on, a :class:`~contrastive_tutorial.stats.Comparison`
    as its difference ``A - B`` with the same (the fewer seeds of the two sides); the Results page
    prints them."""
    if not isinstance(profile, Profile):
        raise TypeError(f"profile must be the chapter's Profile (ct.profile(...)), got {type(profile).__name__}")
    if profile.chapter not in CHAPTERS:
        raise ValueError(f"profile.chapter must be one of {sorted(CHAPTERS)}, got {profile.chapter!r}")
    if not isinstance(measure, str) or not measure:
        raise ValueError(f"measure must be a non-empty name, got {measure!r}")
    if not isinstance(profile.name, str) or not re.fullmatch(r"[A-Za-z0-9_-]+", profile.name):
        raise ValueError(f"profile.name must be a plain name (letters, digits, _ and -), got {profile.name!r}")
    spread = {}
    if isinstance(value, (Estimate, Comparison)):
        seeds = value.seeds if isinstance(value, Estimate) else min(value.seeds)
        spread = {"low": value.low, "high": value.high, "level": value.level, "seeds": seeds, "items": value.items}
        value = value.value if isinstance(value, Estimate) else value.difference
    if isinstance(value, bool) or not isinstance(value, numbers.Real):  # numpy scalars are Real; True, "0.5", arrays not
        raise TypeError(f"value of {measure!r} must be a real number, a stats.Estimate or a stats.Comparison, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"value of {measure!r} must be finite, got {value}")
    if smoke.active():  # random weights: a smoke run's numbers are never recorded
        return
    path = results_dir() / f"{profile.chapter}.{profile.name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    records = _read(path) if path.exists() else {}
    records[measure] = {"value": value, "unit": unit, **spread, "device": str(profile.device),
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
    columns ``chapter, profile, measure, value, unit, low, high, seeds, device, recorded`` (the
    interval and seed count are missing, NaN, for numbers recorded without them)."""
    import pandas as pd

    folder = Path(directory) if directory is not None else results_dir()
    rows = []
    for path in sorted(folder.glob("*.json")) if folder.exists() else []:
        chapter, _, profile_name = path.stem.partition(".")
        for measure, entry in _read(path).items():
            rows.append({"chapter": chapter, "profile": profile_name, "measure": measure, **entry})
    columns = ["chapter", "profile", "measure", "value", "unit", "low", "high", "seeds", "device", "recorded"]
    return pd.DataFrame(rows, columns=columns)


def results_table(records: "pd.DataFrame", profile_name: str = "quick") -> "pd.DataFrame":
    """One row per chapter in book order: the paper's headline, the full-profile setting, and the
    ``profile_name`` measures recorded for it (``"not recorded"`` when a chapter has none)."""
    import pandas as pd

    rows = []
    for chapter in (c for c in RECORDS.values() if c.paper is not None):
        mine = records[(records["chapter"] == chapter.key) & (records["profile"] == profile_name)]
        measured = "; ".join(_measured(row) for _, row in mine.iterrows()) or "not recorded"
        rows.append({"chapter": chapter.title, "paper": chapter.paper, "full profile": chapter.full,
                     f"measured ({profile_name})": measured})
    return pd.DataFrame(rows).set_index("chapter")


def _measured(row) -> str:
    """``measure value unit`` and, when recorded, ``[low, high] (n seeds)``."""
    text = f"{row['measure']} {row['value']:.2f}{(' ' + row['unit']) if row['unit'] else ''}"
    if _present(row.get("low")):
        seeds = int(row["seeds"])
        text += f" [{row['low']:.2f}, {row['high']:.2f}] ({seeds} seed{'s' if seeds > 1 else ''})"
    return text


def _present(value) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def to_markdown(frame: "pd.DataFrame") -> str:
    """``frame`` as a Markdown table (index first), for a page that renders Markdown output."""
    cells = lambda values: "| " + " | ".join(str(v).replace("|", "/").replace("\n", " ") for v in values) + " |"
    lines = [cells([frame.index.name or "", *frame.columns]), "|" + "---|" * (len(frame.columns) + 1)]
    lines += [cells([index, *row]) for index, row in zip(frame.index, frame.itertuples(index=False))]
    return "\n".join(lines)
