"""Each chapter executed once (tools/book_build.py): reuse when nothing changed, a new execution when
the chapter or the package changed, and a raising cell reported with its cell, never reused."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from tool_modules import load

ROOT = Path(__file__).resolve().parents[1]


def _notebook(*sources: str) -> str:
    import nbformat

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# A chapter")]
                                  + [nbformat.v4.new_code_cell(s) for s in sources])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nbformat.writes(nb)


@pytest.fixture
def book(tmp_path, monkeypatch):
    """A two-chapter book with a Results page, in a folder of its own."""
    (tmp_path / "book").mkdir()
    (tmp_path / "contrastive_tutorial").mkdir()
    (tmp_path / "contrastive_tutorial" / "__init__.py").write_text("X = 1\n")
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: book/intro\nparts:\n  - caption: A\n    chapters:\n"
                                       "      - file: book/results\n      - file: book/first\n      - file: book/second\n")
    (tmp_path / "book" / "intro.md").write_text("# Intro\n")
    (tmp_path / "book" / "first.ipynb").write_text(_notebook("print('first', 1 + 1)"))
    (tmp_path / "book" / "second.ipynb").write_text(_notebook("x = 2", "1 / 0", "print('after', x)"))
    (tmp_path / "book" / "results.ipynb").write_text(_notebook("print('results')"))
    build = load("book_build")
    monkeypatch.setattr(build, "ROOT", tmp_path)
    monkeypatch.setattr(build, "EXECUTED", tmp_path / "_build" / "executed")
    monkeypatch.setattr(build, "MANIFEST", tmp_path / "_build" / "executed" / "manifest.json")
    return build


def test_chapters_in_toc_order_with_results_last(book):
    assert book.chapters() == ["first", "second", "results"]


def test_one_execution_reused_until_the_chapter_or_the_package_changes(book, tmp_path):
    logs: list[str] = []
    (tmp_path / "book" / "second.ipynb").write_text(_notebook("print('fine')"))
    assert book.execute(log=logs.append) == []
    manifest = book.read_manifest()
    assert list(manifest) == ["first", "second", "results"]  # Results ran after the others
    executed = json.loads((tmp_path / "_build" / "executed" / "book" / "first.ipynb").read_text())
    assert "first 2" in "".join(executed["cells"][1]["outputs"][0]["text"])
    assert manifest["first"]["cells"][0] is None and manifest["first"]["cells"][1] >= 0  # markdown, code
    assert book.out_of_date() == []
    book.execute(log=logs.append)
    assert "every chapter's execution is current" in logs[-1]
    (tmp_path / "book" / "first.ipynb").write_text(_notebook("print('first', 2 + 2)"))
    assert book.out_of_date() == ["first", "results"]  # the Results page's key holds every chapter's
    (tmp_path / "contrastive_tutorial" / "__init__.py").write_text("X = 2\n")
    assert book.out_of_date() == ["first", "second", "results"]
    book.execute(["second"], log=logs.append)
    assert book.out_of_date() == ["first", "results"]  # Results waits until every chapter is current
    book.execute(["first"], log=logs.append)
    assert book.out_of_date() == []  # ... and then runs after the last of them


def test_a_raising_cell_is_reported_and_never_reused(book, tmp_path, monkeypatch):
    monkeypatch.setenv("CT_PROFILE", "quick")
    failed = book.execute(["second"], log=lambda line: None)
    assert failed == ["second"]
    entry = book.read_manifest()["second"]
    (error,) = entry["errors"]
    assert (error["cell"], error["ename"]) == (2, "ZeroDivisionError") and "1 / 0" in error["source"]
    executed = json.loads((tmp_path / "_build" / "executed" / "book" / "second.ipynb").read_text())
    assert "after 2" in "".join(executed["cells"][3]["outputs"][0]["text"])  # the cells after it still ran
    report = book.describe_errors("second", entry)
    assert "cell 2: ZeroDivisionError" in report and "1 / 0" in report and "Traceback" not in report.split("\n")[0]
    assert "second" in book.out_of_date(["second"])  # a failed execution is run again next time
    with pytest.raises(SystemExit, match="a cell raised or wrote to stderr in \\['second'\\]"):
        book.main(["execute", "second"])
    with pytest.raises(SystemExit, match="unknown chapter"):
        book.main(["execute", "nonesuch"])


def test_a_cell_writing_to_stderr_fails_like_the_website_build(book, tmp_path, monkeypatch):
    monkeypatch.setenv("CT_PROFILE", "quick")
    (tmp_path / "book" / "second.ipynb").write_text(
        _notebook("import warnings; warnings.warn('a stray caveat')", "print('quiet')"))
    assert book.execute(["second"], log=lambda line: None) == ["second"]
    (error,) = book.read_manifest()["second"]["errors"]
    assert (error["cell"], error["ename"]) == (1, "stderr") and "a stray caveat" in error["evalue"]
    assert "cell 1: stderr" in book.describe_errors("second", book.read_manifest()["second"])


def test_a_changed_profile_variable_makes_every_chapter_stale(book, monkeypatch):
    monkeypatch.setenv("CT_PROFILE", "quick")
    before = book.keys()
    monkeypatch.setenv("CT_PROFILE", "colab")
    after = book.keys()
    assert all(before[n] != after[n] for n in before)
    monkeypatch.setenv("CT_RUNS_DIR", "/elsewhere")  # where runs are kept changes no result
    assert book.keys() == after


def test_stage_switches_execution_off_and_uses_the_executed_copies(book, tmp_path):
    shutil.copy(ROOT / "_config.yml", tmp_path / "_config.yml")
    with pytest.raises(SystemExit, match="no executed copy"):
        book.stage(tmp_path / "_build" / "stage")
    (tmp_path / "book" / "second.ipynb").write_text(_notebook("print('fine')"))
    book.execute(log=lambda line: None)
    source = book.stage(tmp_path / "_build" / "stage", transform=lambda nb: {**nb, "metadata": {"staged": True}})
    assert 'execute_notebooks: "off"' in (source / "_config.yml").read_text()
    staged = json.loads((source / "book" / "first.ipynb").read_text())
    assert staged["metadata"] == {"staged": True} and staged["cells"][1]["outputs"]
    assert (source / "book" / "intro.md").exists()


def test_ci_timing_table_reads_phases_tests_and_chapters(tmp_path, monkeypatch):
    ci_times = load("ci_times")
    (tmp_path / "phases.tsv").write_text("virtual environment\t95\nchapters (each executed once)\t1100\n")
    (tmp_path / "pytest.json").write_text(json.dumps({"parts": {"unit tests": 61.0, "smoke suite": 300.0},
                                                      "chapters": {"scl": {"seconds": 90.0, "here": True}}}))
    executed = tmp_path / "_build" / "executed"
    executed.mkdir(parents=True)
    (executed / "manifest.json").write_text(json.dumps({
        "simcse": {"seconds": 190.0, "errors": []}, "scl": {"seconds": 90.0, "errors": [{"cell": 3}]}}))
    monkeypatch.setattr(ci_times, "ROOT", tmp_path)
    text = ci_times.table(tmp_path)
    assert "  1100 s  chapters (each executed once)" in text and "300.0 s  smoke suite" in text
    assert "190.0 s  simcse  OVER BUDGET\n" in text
    assert "90.0 s  scl  1 cell(s) raised  executed again by make test" in text
    assert "280.0 s  all chapters" in text


def test_make_test_fails_when_a_cell_of_a_chapter_raises(book, tmp_path):
    """The chapter tests of conftest.py on a copy of the book with a broken chapter: pytest fails,
    naming the chapter, the cell and the error; the good chapter passes on the same execution."""
    import subprocess
    import sys

    (tmp_path / "tools").mkdir()
    shutil.copy(ROOT / "tools" / "book_build.py", tmp_path / "tools" / "book_build.py")
    shutil.copy(ROOT / "conftest.py", tmp_path / "conftest.py")
    env = {k: v for k, v in os.environ.items() if k != "CT_PYTEST_TIMINGS"}  # set where tools/stack_check.py runs us
    done = subprocess.run([sys.executable, "-m", "pytest", "book", "-p", "no:cacheprovider", "-q"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300, env=env)
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert "1 failed, 2 passed" in out and "FAILED book/second.ipynb::second" in out
    assert "cell 2: ZeroDivisionError" in out and "1 / 0" in out
    assert book.read_manifest()["second"]["errors"] and not book.read_manifest()["results"]["errors"]
    timings = json.loads((tmp_path / "_build" / "timings" / "pytest.json").read_text())
    assert timings["chapters"]["second"]["here"] and timings["parts"]["chapters"] > 0


def test_the_key_does_not_depend_on_the_process_sys_path(book, monkeypatch):
    """pytest puts the repository (and an editable install's egg-info) on sys.path, `make notebooks`
    does not: both must compute the same key, or `make test` would execute every chapter again."""
    before = book._environment_key()
    monkeypatch.syspath_prepend(str(ROOT))
    assert book._environment_key() == before
