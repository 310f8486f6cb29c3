"""Two things the website needs that jupyter-book 1.0's configuration cannot express.

1. The page "Results against the papers" (``book/results``) reads what the chapters record
   while they execute, so it is read (and executed) after every other page.
2. sphinx-thebe 0.3 registers its inline configuration (``const THEBE_JS_URL = ...``) twice,
   once with ``filename=None`` and once with ``""``; a second ``const`` declaration is a
   SyntaxError in the browser. Every page keeps the first copy of each script.
   ``tools/check_site.py`` opens every page in a browser and fails on such errors.
"""

from __future__ import annotations


def _dedupe_scripts(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, kept = set(), []
    for script in scripts:
        key = (getattr(script, "filename", script) or None, getattr(script, "attributes", {}).get("body"))
        if key not in seen:
            seen.add(key)
            kept.append(script)
    context["script_files"] = kept


def _results_last(app, env, docnames):
    if RESULTS_PAGE in docnames:
        docnames.remove(RESULTS_PAGE)
        docnames.append(RESULTS_PAGE)


RESULTS_PAGE = "book/results"


def setup(app):
    app.connect("env-before-read-docs", _results_last)
    app.connect("html-page-context", _dedupe_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
