"""Each chapter executed once; the website, the student edition and the tests all read that execution.

    python tools/book_build.py execute [--force] [chapter ...]  # run what is out of date
    python tools/book_build.py html                              # the website from the executed chapters
    python tools/book_build.py times                             # seconds per chapter and per cell

``execute`` runs every chapter notebook of ``_toc.yml`` (the Results page last, since it reads
what the others record) with nbclient, in the current environment, and writes the executed copy
to ``_build/executed/book/<chapter>.ipynb`` with an entry in ``_build/executed/manifest.json``:
the chapter's key, its seconds in all and per cell, and every cell that raised. A chapter is run
again only when its key changes. The key hashes what an execution depends on: the notebook, every
file of the package, ``pyproject.toml``, the installed distributions' versions and the variables
that choose the profile and the data (``CT_PROFILE``, ``CT_SMOKE``, ``CT_DATA_DIR``); the Results
page's key adds every other chapter's. A chapter with a failing cell is never reused: the next
command runs it again. Each finished chapter is saved at once, so an interrupted build resumes.

``html`` stages a copy of the book in which every chapter is its executed copy, and builds it with
jupyter-book's execution switched off (``tools/student_edition.py`` builds the student edition the
same way, with the solutions taken out). ``make book`` runs ``execute`` then ``html``; ``make
test`` checks the same executions (``conftest.py``: one test per chapter, failing on any cell that
raised), executing only what is missing or out of date.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import time
from collections.abc import Callable, Iterable
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXECUTED = ROOT / "_build" / "executed"
MANIFEST = EXECUTED / "manifest.json"
RESULTS = "results"  # the page that reads every other chapter's records
KEY_VARIABLES = ("CT_PROFILE", "CT_SMOKE", "CT_DATA_DIR")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def chapters() -> list[str]:
    """The notebooks of ``_toc.yml`` by name (``book/simcse.ipynb`` is ``simcse``), Results last."""
    import yaml

    def files(entries: list[dict]) -> Iterable[str]:
        for entry in entries:
            if "file" in entry:
                yield entry["file"]
            for key in ("chapters", "sections", "parts"):
                yield from files(entry.get(key, []))

    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    names = [Path(f).name for f in [toc["root"], *files(toc.get("parts", []))] if (ROOT / f"{f}.ipynb").exists()]
    return [n for n in names if n != RESULTS] + [n for n in names if n == RESULTS]


def _digest(parts: Iterable[bytes]) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(hashlib.sha256(part).digest())
    return h.hexdigest()[:16]


def _environment_key() -> str:
    package = sorted(p for p in (ROOT / "contrastive_tutorial").rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    # the environment's own packages: metadata.distributions() alone also reads sys.path, which
    # differs between processes (pytest puts the repository, and the package's egg-info, on it)
    site = sorted({sysconfig.get_paths()[name] for name in ("purelib", "platlib")})
    versions = sorted({f"{d.metadata['Name']}=={d.version}" for d in metadata.distributions(path=site)})
    variables = [f"{name}={os.environ.get(name, '')}" for name in KEY_VARIABLES]
    return _digest([*(str(p.relative_to(ROOT)).encode() + p.read_bytes() for p in package),
                    (ROOT / "pyproject.toml").read_bytes(), "\n".join(versions + variables).encode(),
                    sys.version.encode()])


def keys() -> dict[str, str]:
    """Each chapter's key: what its execution depends on (see the module docstring)."""
    shared = _environment_key()
    out = {name: _digest([shared.encode(), (ROOT / "book" / f"{name}.ipynb").read_bytes()]) for name in chapters()}
    if RESULTS in out:
        out[RESULTS] = _digest([out[RESULTS].encode(), *(k.encode() for n, k in out.items() if n != RESULTS)])
    return out


def read_manifest() -> dict[str, dict]:
    return json.loads(MANIFEST.read_text()) if MANIFEST.exists() else {}


def _write_manifest(manifest: dict[str, dict]) -> None:
    MANIFEST.parent.mkdir(parents=True, exist_ok=True)
    tmp = MANIFEST.with_suffix(".tmp")
    tmp.write_text(json.dumps(manifest, indent=1) + "\n")
    tmp.replace(MANIFEST)


def out_of_date(names: Iterable[str] | None = None, current: dict[str, str] | None = None) -> list[str]:
    """The chapters among ``names`` (all by default) without a current, error-free execution;
    ``current`` is :func:`keys`, when the caller has it already.

    Asked for the Results page alone, the chapters it reads come first where they have no
    execution with their current key; one whose current execution failed is not run again for it.
    """
    current, manifest = current or keys(), read_manifest()

    def stale(name: str, failed_too: bool = True) -> bool:
        entry = manifest.get(name)
        return (entry is None or entry["key"] != current[name] or (failed_too and bool(entry["errors"]))
                or not (EXECUTED / "book" / f"{name}.ipynb").exists())

    wanted = list(current) if names is None else [n for n in current if n in set(names)]
    todo = [n for n in wanted if stale(n)]
    if RESULTS in wanted:
        todo = [n for n in current if n in todo or (n != RESULTS and stale(n, failed_too=False))]
    return todo


def _errors(notebook) -> list[dict]:
    """Every cell that raised, and every cell that wrote to stderr: the website's build (``-W``,
    myst-nb's ``output_stderr: remove-warn``) fails on stray stderr, so the tests fail on it too."""
    found = []
    for index, cell in enumerate(notebook.cells):
        for output in cell.get("outputs", []) if cell.cell_type == "code" else []:
            if output.get("output_type") == "error":
                found.append({"cell": index, "source": cell.source[:300], "ename": output.get("ename", ""),
                              "evalue": output.get("evalue", ""),
                              "traceback": _ANSI.sub("", "\n".join(output.get("traceback", [])))})
            elif output.get("output_type") == "stream" and output.get("name") == "stderr":
                found.append({"cell": index, "source": cell.source[:300], "ename": "stderr",
                              "evalue": "the cell wrote to stderr, which fails the website's build: "
                                        + _ANSI.sub("", "".join(output.get("text", "")))[:1000], "traceback": ""})
    return found


def _cell_seconds(notebook) -> list[float | None]:
    from datetime import datetime

    seconds = []
    for cell in notebook.cells:
        timing = cell.get("metadata", {}).get("execution", {})
        start, end = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
        if cell.cell_type != "code" or not (start and end):
            seconds.append(None)
            continue
        parse = lambda t: datetime.fromisoformat(t.replace("Z", "+00:00"))  # noqa: E731
        seconds.append(round((parse(end) - parse(start)).total_seconds(), 2))
    return seconds


def _cell_timeout() -> int:
    """Seconds a cell may run: ``execute.timeout`` of ``_config.yml``, as for jupyter-book itself."""
    import yaml

    config = yaml.safe_load((ROOT / "_config.yml").read_text()) if (ROOT / "_config.yml").exists() else {}
    return int((config or {}).get("execute", {}).get("timeout", 900))


def execute_one(name: str) -> dict:
    """Run ``book/<name>.ipynb`` to its end (a raising cell does not stop the rest) and save it."""
    import nbclient
    import nbformat

    notebook = nbformat.read(ROOT / "book" / f"{name}.ipynb", as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=_cell_timeout(), kernel_name="python3", allow_errors=True,
                                     record_timing=True, resources={"metadata": {"path": str(ROOT / "book")}})
    start, failure = time.perf_counter(), None
    try:  # progress bars stay out of the static pages
        client.execute(env={**os.environ, "CT_PROGRESS": "0"})
    except Exception as error:  # a dead kernel or a timed-out cell: the cells after it never ran
        failure = {"cell": None, "source": "", "ename": type(error).__name__, "evalue": str(error)[:2000],
                   "traceback": ""}
    seconds = round(time.perf_counter() - start, 1)
    path = EXECUTED / "book" / f"{name}.ipynb"
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, path)
    return {"seconds": seconds, "cells": _cell_seconds(notebook), "errors": _errors(notebook) + ([failure] if failure else []),
            "executed": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "profile": os.environ.get("CT_PROFILE", "")}


def execute(names: Iterable[str] | None = None, force: bool = False, log: Callable[[str], None] = print) -> list[str]:
    """Execute the chapters among ``names`` that are out of date (all of them with ``force``).

    Returns the chapters whose execution raised; each finished chapter is in the manifest at once.
    """
    current = keys()
    wanted = list(current) if names is None else [n for n in current if n in set(names)]
    todo = wanted if force else out_of_date(wanted, current)
    if force and RESULTS in todo:
        todo = list(current)
    # Results reads what the chapters record: run it again after any chapter, once all are current
    if todo and RESULTS in current and RESULTS not in todo and set(out_of_date(None, current)) - {RESULTS} <= set(todo):
        todo.append(RESULTS)
    manifest = read_manifest()
    guess = {n: manifest.get(n, {}).get("seconds", 120.0) for n in todo}
    if not todo:
        log("book_build: every chapter's execution is current (_build/executed)")
    started = time.perf_counter()
    for i, name in enumerate(todo):
        left = sum(guess[n] for n in todo[i:])
        log(f"book_build: executing {name}.ipynb ({i + 1}/{len(todo)}; about {left / 60:.0f} min left)")
        entry = execute_one(name)
        manifest = read_manifest()  # the package is hashed again: an edit during the run makes the entry stale
        manifest[name] = {"key": keys()[name], **entry}
        _write_manifest(manifest)
        state = f"{len(entry['errors'])} cell(s) raised" if entry["errors"] else "ok"
        log(f"book_build: {name}.ipynb took {entry['seconds']:.0f} s: {state}")
    if todo:
        log(f"book_build: {len(todo)} chapter(s) in {time.perf_counter() - started:.0f} s")
    manifest = read_manifest()
    return [n for n in wanted if manifest.get(n, {}).get("errors")]


def describe_errors(name: str, entry: dict) -> str:
    """What raised in ``name``'s execution, cell by cell, for a test report or the build log."""
    lines = [f"{name}.ipynb: {len(entry['errors'])} cell(s) raised (executed copy: _build/executed/book/{name}.ipynb)"]
    for error in entry["errors"]:
        where = f"cell {error['cell']}" if error["cell"] is not None else "the kernel"
        lines += [f"--- {where}: {error['ename']}: {error['evalue']}"]
        if error["source"]:
            lines += ["    " + line for line in error["source"].splitlines()[:6]]
        if error["traceback"]:
            lines += [error["traceback"]]
    return "\n".join(lines)


def stage(out: Path, transform: Callable[[dict], dict] = lambda notebook: notebook) -> Path:
    """A copy of the book in ``out/source`` whose chapters are their executed copies (passed
    through ``transform``), with execution switched off in its ``_config.yml``."""
    missing = [n for n in chapters() if not (EXECUTED / "book" / f"{n}.ipynb").exists()]
    if missing:
        raise SystemExit(f"no executed copy of {missing}: run `python tools/book_build.py execute` first")
    source = out / "source"
    shutil.rmtree(source, ignore_errors=True)
    source.mkdir(parents=True)
    shutil.copy(ROOT / "_toc.yml", source / "_toc.yml")
    config = (ROOT / "_config.yml").read_text()
    if "execute_notebooks: force" not in config:
        raise SystemExit("_config.yml: expected 'execute_notebooks: force' to switch off for the staged build")
    (source / "_config.yml").write_text(config.replace("execute_notebooks: force", "execute_notebooks: \"off\""))
    shutil.copytree(ROOT / "book", source / "book", ignore=shutil.ignore_patterns("*.ipynb", "__pycache__"))
    if (ROOT / ".mathjax").exists():
        (source / ".mathjax").symlink_to(ROOT / ".mathjax")
    for name in chapters():
        notebook = transform(json.loads((EXECUTED / "book" / f"{name}.ipynb").read_text()))
        (source / "book" / f"{name}.ipynb").write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n")
    return source


def build_html(source: Path, out: Path) -> None:
    """jupyter-book on a staged ``source``: the site in ``out/_build/html``; warnings are errors."""
    jupyter_book = Path(sys.executable).parent / "jupyter-book"
    subprocess.run([str(jupyter_book), "build", "-W", "-n", "--keep-going", str(source), "--path-output", str(out)],
                   check=True, env={**os.environ, "CT_PROGRESS": "0"})


def html() -> None:
    """The teacher edition in ``_build/html`` from the executed chapters; they must be current."""
    stale = out_of_date()
    if stale:
        raise SystemExit(f"executions out of date or failed: {stale}; run `python tools/book_build.py execute`")
    build_html(stage(ROOT / "_build" / "stage"), ROOT)


def times() -> str:
    """A table of each chapter's seconds, slowest first, with its slowest cells."""
    manifest = read_manifest()
    rows = sorted(((n, e) for n, e in manifest.items()), key=lambda item: -item[1]["seconds"])
    lines = ["seconds  chapter          slowest cells (index: s)                 executed"]
    for name, entry in rows:
        cells = sorted(((s, i) for i, s in enumerate(entry["cells"]) if s is not None), reverse=True)[:3]
        slow = ", ".join(f"{i}: {s:.0f}" for s, i in cells)
        lines.append(f"{entry['seconds']:7.1f}  {name:<15}  {slow:<40} {entry['executed']}")
    lines.append(f"{sum(e['seconds'] for _, e in rows):7.1f}  all chapters")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["execute", "html", "times"])
    parser.add_argument("chapters", nargs="*", help="chapter names (execute only; default: all)")
    parser.add_argument("--force", action="store_true", help="execute even the chapters that are current")
    args = parser.parse_intermixed_args(argv)
    if args.command == "execute":
        unknown = sorted(set(args.chapters) - set(chapters()))
        if unknown:
            raise SystemExit(f"unknown chapter(s) {unknown}; expected some of {chapters()}")
        failed = execute(args.chapters or None, force=args.force)
        if failed:
            manifest = read_manifest()
            print("\n\n".join(describe_errors(n, manifest[n]) for n in failed), file=sys.stderr)
            raise SystemExit(f"book_build: a cell raised or wrote to stderr in {failed}")
    elif args.command == "html":
        html()
    else:
        print(times())


if __name__ == "__main__":
    main()
