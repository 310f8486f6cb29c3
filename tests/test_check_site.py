"""The website checker (tools/check_site.py): its link check and its reading of browser events."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location("check_site", Path(__file__).parents[1] / "tools" / "check_site.py")
check_site = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(check_site)


@pytest.fixture
def site(tmp_path):
    (tmp_path / "book").mkdir()
    (tmp_path / "_static").mkdir()
    (tmp_path / "_static" / "style.css").write_text("")
    (tmp_path / "_static" / "macros.html").write_text("<a href=\"{{ pathto('x') }}\">template</a>")
    (tmp_path / "index.html").write_text('<a href="book/a.html#goals">a</a><link href="_static/style.css">'
                                         '<a href="https://example.org/">external</a><a href="#top" id="top">t</a>')
    (tmp_path / "book" / "a.html").write_text('<h1 id="goals">A</h1><a href="../index.html">home</a>')
    return tmp_path


def test_a_clean_site_passes(site):
    assert check_site.check_links(site) == []


def test_missing_files_and_fragments_are_reported(site):
    (site / "book" / "b.html").write_text('<a href="a.html#nowhere">x</a><img src="../_images/fig.png">'
                                          '<a href="c.html">y</a>')
    problems = check_site.check_links(site)
    assert len(problems) == 3
    assert any("no id 'nowhere'" in p for p in problems)
    assert any("_images/fig.png -> missing file" in p for p in problems)
    assert any("c.html -> missing file" in p for p in problems)


def test_browser_events_become_problems():
    base = "http://127.0.0.1:8000/"
    events = [
        {"method": "Runtime.exceptionThrown", "params": {"exceptionDetails": {"exception": {"description": "SyntaxError: x"}}}},
        {"method": "Runtime.consoleAPICalled", "params": {"type": "error", "args": [{"value": "boom"}]}},
        {"method": "Runtime.consoleAPICalled", "params": {"type": "log", "args": [{"value": "fine"}]}},
        {"method": "Network.responseReceived", "params": {"response": {"status": 404, "url": base + "_static/x.js"}}},
        {"method": "Network.responseReceived", "params": {"response": {"status": 404, "url": base + "favicon.ico"}}},
        {"method": "Network.loadingFailed", "params": {"errorText": "net::ERR_FAILED"}},
        {"method": "Network.loadingFailed", "params": {"errorText": "net::ERR_ABORTED", "canceled": True}},
    ]
    problems = check_site._problems_of(events, base)
    assert problems == ["uncaught exception: SyntaxError: x", "console error: boom",
                        f"HTTP 404: {base}_static/x.js", "request failed: net::ERR_FAILED"]


def test_site_fixes_read_results_last_and_drop_repeated_scripts():
    spec = importlib.util.spec_from_file_location("site_fixes", Path(__file__).parents[1] / "book" / "_ext" / "site_fixes.py")
    site_fixes = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(site_fixes)
    docnames = ["book/adversarial", "book/results", "book/simcse"]
    site_fixes._results_last(None, None, docnames)
    assert docnames == ["book/adversarial", "book/simcse", "book/results"]

    class Script:
        def __init__(self, filename, body=None):
            self.filename, self.attributes = filename, ({"body": body} if body else {})

    scripts = [Script("a.js"), Script(None, "const X = 1"), Script("b.js"), Script("", "const X = 1"), Script("a.js")]
    context = {"script_files": scripts}
    site_fixes._dedupe_scripts(None, "page", "page.html", context, None)
    assert context["script_files"] == scripts[:3]
