"""The student edition: the book's website with every exercise's solution left out, nothing else changed.

    python tools/student_edition.py build [--out _build/student]   # after `make book`
    python tools/student_edition.py check [--out _build/student]

``build`` stages a copy of the book in which every chapter is the notebook the teacher build
executed (``_build/executed``, made by ``tools/book_build.py``), with its solution blocks removed,
and builds it with execution switched off, as the teacher edition is built: the student pages carry
the very outputs of the teacher pages, and a second build costs a minute instead of a second
execution of every chapter. The downloadable notebooks of the student site are the stripped ones. ``check`` compares the two sites page by
page: no solution text in any student page or notebook, and every other text unchanged.

``make book EDITION=student`` runs both after the teacher build.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import book_build  # noqa: E402  (tools/ is not a package)

SOLUTION = re.compile(r"^```\{admonition\} Solution\s*$")


def strip_solutions(markdown: str) -> tuple[str, list[str]]:
    """``markdown`` without its ``{admonition} Solution`` blocks, and the removed blocks' bodies."""
    kept, removed, block = [], [], None
    for line in markdown.split("\n"):
        if block is None and SOLUTION.match(line):
            block = []
            continue
        if block is not None:
            if line.strip() == "```":
                removed.append("\n".join(l for l in block if not l.startswith(":class:")))
                block = None
            else:
                block.append(line)
            continue
        kept.append(line)
    if block is not None:
        raise ValueError("a solution block is not closed by a line of ```")
    return "\n".join(kept), removed


def strip_notebook(notebook: dict) -> tuple[dict, list[str]]:
    """A copy of ``notebook`` (nbformat JSON) with the solutions taken out of its markdown cells."""
    out, removed = json.loads(json.dumps(notebook)), []
    for cell in out["cells"]:
        if cell["cell_type"] != "markdown":
            continue
        text, gone = strip_solutions("".join(cell["source"]))
        if gone:
            cell["source"] = text
            removed += gone
    return out, removed


def merge_streams(notebook: dict) -> dict:
    """Each cell's stdout (and stderr) as one output, where the teacher page shows it.

    A kernel sends a cell's printed text in many pieces; the teacher page merges them at render time
    (``nb_merge_streams``). The student notebooks are downloadable as they are, so they are merged
    here. Streams already merged in place (the first of each name holding the whole text, the
    later ones stale copies of its parts) are not printed twice.
    """
    for cell in notebook["cells"]:
        first: dict[str, dict] = {}
        outputs = []
        for output in cell.get("outputs", []):
            if output.get("output_type") != "stream":
                outputs.append(output)
                continue
            name, text = output["name"], "".join(output["text"])
            if name not in first:
                first[name] = output
                output["text"] = text
                outputs.append(output)
            elif text not in first[name]["text"]:  # not merged in place: merge it now
                first[name]["text"] += text
        if "outputs" in cell:
            cell["outputs"] = outputs
    return notebook


def _chapters() -> list[Path]:
    return sorted((ROOT / "book").glob("*.ipynb"))


def build(out: Path) -> None:
    shutil.rmtree(out, ignore_errors=True)
    source = book_build.stage(out, transform=lambda notebook: strip_notebook(merge_streams(notebook))[0])
    book_build.build_html(source, out)
    print(f"The student edition is in {out / '_build' / 'html' / 'index.html'}")


def _article_text(html: str, drop_solutions: bool) -> str:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "html.parser")
    article = soup.find("article") or soup.body or soup  # a redirect page has neither
    if drop_solutions:
        for box in article.select("div.admonition, details"):
            title = box.find(class_="admonition-title") or box.find("summary")
            if title is not None and title.get_text(strip=True) == "Solution":
                box.decompose()
    return " ".join(article.get_text(" ").split())


def check(out: Path) -> None:
    teacher, student = ROOT / "_build" / "html", out / "_build" / "html"
    solutions = [body for chapter in _chapters()
                 for body in strip_notebook(json.loads(chapter.read_text()))[1]]
    problems = []
    pages = sorted(p.relative_to(teacher) for p in teacher.rglob("*.html") if "_static" not in p.parts)
    if not pages:
        raise SystemExit(f"no pages in {teacher}: build the book first")
    for page in pages:
        if not (student / page).exists():
            problems.append(f"{page}: missing from the student edition")
            continue
        ours = _article_text((student / page).read_text(), drop_solutions=False)
        expected = _article_text((teacher / page).read_text(), drop_solutions=True)
        if ours != expected:
            problems.append(f"{page}: the student page differs from the teacher page beyond its solutions")
        for body in solutions:
            probe = " ".join(body.split())[:80]
            if len(probe) > 30 and probe in ours:
                problems.append(f"{page}: holds solution text {probe[:50]!r}")
    for notebook in (student / "_sources").rglob("*.ipynb"):
        if "{admonition} Solution" in notebook.read_text():
            problems.append(f"{notebook.relative_to(student)}: the downloadable notebook holds a solution")
    if problems:
        raise SystemExit("student edition check failed:\n  " + "\n  ".join(problems))
    print(f"student edition: {len(pages)} pages match the teacher edition without its {len(solutions)} solutions")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["build", "check"])
    parser.add_argument("--out", type=Path, default=ROOT / "_build" / "student")
    args = parser.parse_args(argv)
    (build if args.command == "build" else check)(args.out.resolve())


if __name__ == "__main__":
    main()
