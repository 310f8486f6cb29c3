"""Repository-wide pytest hooks: the time each chapter notebook takes under nbval.

``make test`` runs every notebook of ``book/`` cell by cell (nbval); the summary at the end of
the run adds up the cells' durations per notebook, so CI logs show each chapter's quick-profile
time next to the whole book's (the budget is about 3 minutes a chapter, 15 for the book).
"""

from __future__ import annotations

from collections import defaultdict

_NOTEBOOK_SECONDS: dict[str, float] = defaultdict(float)


def pytest_runtest_logreport(report) -> None:
    path = report.nodeid.split("::")[0]
    if path.endswith(".ipynb"):
        _NOTEBOOK_SECONDS[path] += report.duration


def pytest_terminal_summary(terminalreporter) -> None:
    if not _NOTEBOOK_SECONDS:
        return
    terminalreporter.section("notebook times (nbval)")
    for path, seconds in sorted(_NOTEBOOK_SECONDS.items(), key=lambda item: -item[1]):
        terminalreporter.write_line(f"{seconds:7.1f} s  {path}")
    terminalreporter.write_line(f"{sum(_NOTEBOOK_SECONDS.values()):7.1f} s  all notebooks")
