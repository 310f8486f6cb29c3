"""Repository-wide pytest hooks: the chapter notebooks as tests, and where the time went.

``make test`` runs ``pytest tests book``. Each chapter of ``book/`` is one test that reads the
chapter's execution from ``_build/executed`` (``tools/book_build.py``): the one ``make book``
made when it is current, else a new one made here. The test fails when any cell raised, naming
the cell, its code and the traceback. So in CI each chapter is executed once, by ``make book``,
and the website shows the very outputs these tests check.

The summary at the end prints the seconds of each part of the run (unit tests, the smoke suite,
the chapters) and of each chapter's execution, and writes them to ``_build/timings/pytest.json``
for the CI's timing table (``tools/ci_times.py``).
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent
_PART_SECONDS: dict[str, float] = defaultdict(float)
_EXECUTED_HERE: set[str] = set()


@functools.cache
def _book_build():
    """tools/book_build.py (tools/ is not a package), loaded once per session."""
    spec = importlib.util.spec_from_file_location("book_build", ROOT / "tools" / "book_build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class ChapterFailed(Exception):
    """A cell of a chapter raised during its execution."""


class ChapterItem(pytest.Item):
    def runtest(self) -> None:
        build = _book_build()
        before = build.read_manifest().get(self.name, {}).get("executed")
        build.execute([self.name], log=lambda line: print(line, flush=True))
        entry = build.read_manifest()[self.name]
        if entry["executed"] != before:
            _EXECUTED_HERE.add(self.name)
        if entry["errors"]:
            raise ChapterFailed(build.describe_errors(self.name, entry))

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, ChapterFailed):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style)

    def reportinfo(self):
        return self.path, None, f"chapter {self.name}"


class ChapterFile(pytest.File):
    def collect(self):
        yield ChapterItem.from_parent(self, name=self.path.stem)


def pytest_collect_file(file_path: Path, parent):
    if file_path.suffix == ".ipynb" and file_path.parent == ROOT / "book":
        return ChapterFile.from_parent(parent, path=file_path)
    return None


def pytest_collection_modifyitems(items) -> None:
    """Chapters in the book's order (Results last: it reads what the others record)."""
    chapters = [item for item in items if isinstance(item, ChapterItem)]
    if not chapters:
        return
    order = {name: i for i, name in enumerate(_book_build().chapters())}
    chapters.sort(key=lambda item: order.get(item.name, len(order)))
    others = [item for item in items if not isinstance(item, ChapterItem)]
    items[:] = others + chapters


def _part(nodeid: str) -> str:
    path = nodeid.split("::")[0]
    if path.endswith(".ipynb"):
        return "chapters"
    return "smoke suite" if path.endswith("test_smoke.py") else "unit tests"


def pytest_runtest_logreport(report) -> None:
    _PART_SECONDS[_part(report.nodeid)] += report.duration


def pytest_terminal_summary(terminalreporter) -> None:
    if not _PART_SECONDS:
        return
    terminalreporter.section("where the time went")
    for part, seconds in _PART_SECONDS.items():
        terminalreporter.write_line(f"{seconds:7.1f} s  {part}")
    chapters = {}
    if "chapters" in _PART_SECONDS:
        build = _book_build()
        manifest = build.read_manifest()
        terminalreporter.write_line("each chapter's one execution (executed here, or reused from `make book`):")
        for line in build.times().splitlines():
            terminalreporter.write_line("  " + line)
        chapters = {name: {"seconds": entry["seconds"], "here": name in _EXECUTED_HERE}
                    for name, entry in manifest.items()}
    # tools/stack_check.py runs the tests again in other environments: it points them elsewhere
    out = Path(os.environ.get("CT_PYTEST_TIMINGS") or ROOT / "_build" / "timings" / "pytest.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"parts": dict(_PART_SECONDS), "chapters": chapters}, indent=1) + "\n")
