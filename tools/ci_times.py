"""Where a CI run's time went: each phase of ``.ci/run``, the parts of ``make test``, each chapter.

    python tools/ci_times.py _build/timings

Reads ``phases.tsv`` (``.ci/run`` writes a line per phase: name, seconds) and ``start`` (the run's
first second) from the folder, ``pytest.json`` (``conftest.py``: the seconds of the unit tests, the
smoke suite and the chapter tests) and ``_build/executed/manifest.json`` (each chapter's one
execution, ``tools/book_build.py``). Standard library only: it runs when the virtual environment
could not be made.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def table(folder: Path) -> str:
    lines = ["", "=" * 30 + " CI timing " + "=" * 30]
    phases = folder / "phases.tsv"
    rows = [line.split("\t") for line in phases.read_text().splitlines() if line] if phases.exists() else []
    for name, seconds in rows:
        lines.append(f"{int(seconds):6d} s  {name}")
    start = folder / "start"
    if start.exists():
        total = int(time.time()) - int(start.read_text())
        lines.append(f"{total:6d} s  in all ({total / 60:.1f} min; the budget is 40 min, the limit 90)")
    tests = folder / "pytest.json"
    again = set()
    if tests.exists():
        timings = json.loads(tests.read_text())
        lines.append("make test, by part:")
        lines += [f"{seconds:8.1f} s  {part}" for part, seconds in timings["parts"].items()]
        again = {name for name, chapter in timings.get("chapters", {}).items() if chapter["here"]}
    manifest = ROOT / "_build" / "executed" / "manifest.json"
    if manifest.exists():
        entries = sorted(json.loads(manifest.read_text()).items(), key=lambda item: -item[1]["seconds"])
        lines.append("each chapter's execution (quick budget: 180 s a chapter):")
        for name, entry in entries:
            flag = "  OVER BUDGET" if entry["seconds"] > 180 and name != "results" else ""
            failed = f"  {len(entry['errors'])} cell(s) raised" if entry["errors"] else ""
            twice = "  executed again by make test" if name in again else ""
            lines.append(f"{entry['seconds']:8.1f} s  {name}{flag}{failed}{twice}")
        lines.append(f"{sum(e['seconds'] for _, e in entries):8.1f} s  all chapters")
    return "\n".join(lines + ["=" * 71])


if __name__ == "__main__":
    print(table(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "_build" / "timings"))
