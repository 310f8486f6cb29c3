"""Write the course page (book/course.md) from the chapter records and the chapters themselves.

    python tools/make_course.py           # rewrite book/course.md
    python tools/make_course.py --check   # fail if book/course.md is out of date (a test runs this)

Everything on the page that names a chapter comes from somewhere that cannot drift: the order,
titles, prerequisites, what each chapter changes in InfoNCE and what its GPU profiles show come
from ``contrastive_tutorial.chapters``; the learning goals and exercise titles are read from the
notebooks; the checked exercises from ``contrastive_tutorial.exercises.CHECKERS``; the times from
``contrastive_tutorial.budget``. Only the grouping into weeks and the outside prerequisites are
written here.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from contrastive_tutorial import budget, exercises  # noqa: E402
from contrastive_tutorial.chapters import CHAPTERS  # noqa: E402

# Eight weeks: one chapter a week, the two fine-tuning chapters in weeks 6 and 7, and the
# appendix beside SCCL in the last week. A six-week course merges weeks 2-3 and 6-7 (see the page).
WEEKS = [("infonce",), ("simclr",), ("beyond",), ("simcse",), ("promptbert",), ("scl",), ("adversarial",),
         ("sccl", "scaling")]

OUTSIDE = {  # what each chapter assumes from outside the book
    "infonce": "Python and PyTorch (tensors, autograd, a training loop); softmax and cross-entropy; "
               "dot products and norms",
    "simclr": "convolutional networks; logistic regression (the linear probe)",
    "beyond": "batch normalisation; exponential moving averages",
    "simcse": "transformers and BERT's [CLS] token, at the level of a first NLP course; Spearman's correlation",
    "promptbert": "masked language modelling; tokenisation into word pieces",
    "scl": "fine-tuning a pretrained encoder for classification",
    "adversarial": "gradients with respect to inputs (adversarial examples)",
    "sccl": "k-means; the KL divergence",
    "scaling": "GPU memory; data-parallel training across processes",
}


def _markdown(notebook: str) -> str:
    cells = json.loads((ROOT / f"{notebook}.ipynb").read_text(encoding="utf-8"))["cells"]
    return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")


def learning_goals(notebook: str) -> list[str]:
    """The bullets of the chapter's "Learning goals" admonition, each joined onto one line."""
    text = _markdown(notebook)
    block = re.search(r"```\{admonition\} Learning goals\n(.*?)```", text, flags=re.S)
    if block is None:
        raise ValueError(f"{notebook}: no Learning goals admonition")
    goals, current = [], None
    for line in block.group(1).splitlines():
        if line.startswith("- "):
            current = line[2:].strip()
            goals.append(current)
        elif current is not None and line.startswith("  "):
            goals[-1] += " " + line.strip()
    return [g.rstrip(",.") for g in goals]


def exercise_titles(notebook: str) -> list[str]:
    """The bold titles of the chapter's numbered exercises, in order."""
    text = _markdown(notebook)
    return re.findall(r"^\d+\. \*\*(.+?)\*\*", text[text.index("## Exercises"):], flags=re.M)


def checked_exercise(key: str) -> str | None:
    """The title of the exercise that calls the chapter's checker."""
    text = _markdown(CHAPTERS[key].notebook)
    exercises_text = text[text.index("## Exercises"):]
    checker = exercises.CHECKERS.get(key)
    for item in re.split(r"(?m)^(?=\d+\. \*\*)", exercises_text):
        if checker and f"exercises.{checker}(" in item:
            return re.match(r"\d+\. \*\*(.+?)\*\*", item).group(1)
    return None


def _minutes(key: str) -> str:
    return f"about {max(1, round(budget.QUICK_SECONDS[key] / 60))} min"


def page() -> str:
    """The course page, Markdown."""
    keys_in_weeks = [k for week in WEEKS for k in week]
    if keys_in_weeks != list(CHAPTERS):
        raise ValueError(f"the weeks must cover the chapters in book order: {keys_in_weeks} vs {list(CHAPTERS)}")
    lines = [
        "# Teaching from this book",
        "",
        "This page is a plan for a course of eight weeks (six in a shorter variant) built on the book, for",
        "students who know some machine learning and want to learn contrastive representation learning in",
        "vision and language from the papers' equations to running code. It is generated from the chapters",
        "themselves (`tools/make_course.py`; a test keeps it in step): the order, prerequisites, learning",
        "goals, exercises and GPU runs below are the chapters' own.",
        "",
        "Each chapter is one unit: 45 to 90 minutes of study, its notebook running in a few minutes on a",
        "laptop's CPU (the quick profile), with exercises at the end. Every chapter has one coding",
        "exercise that the package checks (`contrastive_tutorial.exercises`): students call the checker",
        "on their function and get either a confirmation or the name of their mistake. For graded work,",
        "build the **student edition** (`make book EDITION=student`): the same site, with every solution",
        "left out.",
        "",
        "## The plan",
        "",
        "| week | chapter | read first | what it changes in InfoNCE | CPU run |",
        "|---|---|---|---|---|",
    ]
    schedule = [(week, CHAPTERS[key]) for week, keys in enumerate(WEEKS, 1) for key in keys]
    for week, c in schedule:
        first = ", ".join(CHAPTERS[p].title for p in c.prerequisites) or "(none)"
        lines.append(f"| {week} | [{c.title}]({Path(c.notebook).name}.ipynb) | {first} | {c.changes} | {_minutes(c.key)} |")
    lines += [
        "",
        "A six-week course: take SimCLR intuition and Beyond negatives in one week, SCL fine-tuning and",
        "Adversarial contrastive learning in one week, and leave the appendix as reading.",
        "",
        "## Week by week",
    ]
    for week, c in schedule:
        titles = exercise_titles(c.notebook)
        checked = checked_exercise(c.key)
        lines += ["", f"### Week {week}: {c.title}", "",
                  f"**Before:** {', '.join(CHAPTERS[p].title for p in c.prerequisites) or 'nothing in the book'};"
                  f" from outside the book, {OUTSIDE[c.key]}.", "", "**Learning goals.** After the chapter a student can"]
        lines += [f"- {goal}" for goal in learning_goals(c.notebook)]
        lines += ["", f"**Exercises** ({len(titles)}, each with a solution in the teacher edition): "
                  + "; ".join(f"{i}. {t.rstrip('.')}" for i, t in enumerate(titles, 1)) + "."]
        if checked:
            lines += ["", f"**Checked by the package:** \"{checked.rstrip('.')}\" "
                      f"(`exercises.{exercises.CHECKERS[c.key]}`): assign it as graded work."]
        if c.colab:
            lines += ["", f"**A GPU project** (the chapter's colab profile, aimed at 45 minutes on a free Colab T4): "
                      f"{c.colab}."]
        if c.only_full:
            lines += ["", f"**A longer project** (the full profile): {c.only_full}."]
    lines += ["", "## Prerequisites between chapters", "",
              "Every chapter builds on InfoNCE and temperature. Beyond that:", ""]
    for c in CHAPTERS.values():
        if c.prerequisites:
            lines.append(f"- {c.title}: after {', '.join(CHAPTERS[p].title for p in c.prerequisites)}.")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="fail if book/course.md is out of date")
    args = parser.parse_args(argv)
    target = ROOT / "book" / "course.md"
    text = page()
    if args.check:
        if not target.exists() or target.read_text() != text:
            raise SystemExit("book/course.md is out of date: run python tools/make_course.py")
        print("book/course.md is up to date")
    else:
        target.write_text(text)
        print(f"wrote {target}")


if __name__ == "__main__":
    main()
