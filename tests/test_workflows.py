"""The GitHub Actions workflows run what the README and the Makefile say."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _workflow(name: str) -> dict:
    return yaml.safe_load((ROOT / ".github" / "workflows" / name).read_text())


def _commands(job: dict) -> list[str]:
    return [step["run"] for step in job["steps"] if "run" in step]


def test_tests_workflow_runs_the_readme_test_command():
    readme_test = re.search(r"^make test\b", (ROOT / "README.md").read_text(), re.MULTILINE)
    assert readme_test, "README.md no longer names `make test` as the test command"
    (job,) = _workflow("tests.yml")["jobs"].values()
    assert any(cmd.startswith("make test") for cmd in _commands(job))
    assert job["env"]["CT_PROFILE"] == "quick"


def test_book_workflow_checks_and_publishes_what_make_book_builds():
    workflow = _workflow("book.yml")
    build, deploy = workflow["jobs"]["build"], workflow["jobs"]["deploy"]
    commands = _commands(build)
    assert any(cmd.startswith("make book") for cmd in commands)
    assert any("make check-site" in cmd for cmd in commands)
    uploads = [s for s in build["steps"] if s.get("uses", "").startswith("actions/upload-pages-artifact")]
    assert [s["with"]["path"] for s in uploads] == ["_build/html"]
    assert "The website is in _build/html" in (ROOT / "Makefile").read_text()
    assert deploy["needs"] == "build" and deploy["permissions"] == {"pages": "write", "id-token": "write"}
    assert any(s.get("uses", "").startswith("actions/deploy-pages") for s in deploy["steps"])


def test_mathjax_step_needs_no_node(tmp_path):
    """`make book`'s MathJax step with no npm or node on PATH: the files come from PyPI."""
    pytest.importorskip("mathjax", reason="the book extra (django-static-mathjax) is not installed here")
    import shutil
    import subprocess

    tools = tmp_path / "bin"
    tools.mkdir()
    for tool in ("make", "sh", "rm", "mkdir", "cp", "dirname"):
        found = shutil.which(tool)
        if found:
            (tools / tool).symlink_to(found)
    assert shutil.which("npm", path=str(tools)) is None and shutil.which("node", path=str(tools)) is None
    out = tmp_path / "mathjax"
    import sys

    venv = Path(sys.prefix)  # the environment running the tests, whichever it is (not only the repository's .venv)
    done = subprocess.run(["make", "-o", f"{venv}/.installed", f"VENV={venv}", f"MATHJAX_ROOT={out}",
                           f"{out}/static/mathjax/tex-mml-chtml.js"],
                          cwd=ROOT, env={"PATH": str(tools)}, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    script = out / "static" / "mathjax" / "tex-mml-chtml.js"
    text = script.read_text()
    assert script.stat().st_size > 100_000 and "MathJax" in text and "3.2." in text  # MathJax 3.2
