"""The student edition: solutions out, everything else unchanged (tools/student_edition.py)."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
_spec = importlib.util.spec_from_file_location("student_edition", ROOT / "tools" / "student_edition.py")
student_edition = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(student_edition)

MARKDOWN = """## Exercises

1. **A question.** Do this.
```{admonition} Solution
:class: dropdown
The answer is 42.
```
2. **Another.** Do that.
```{admonition} Solution
:class: dropdown
Use `f(x)`.

Then check.
```
Closing words."""


def test_solutions_are_removed_and_nothing_else():
    text, removed = student_edition.strip_solutions(MARKDOWN)
    assert removed == ["The answer is 42.", "Use `f(x)`.\n\nThen check."]
    assert text == "## Exercises\n\n1. **A question.** Do this.\n2. **Another.** Do that.\nClosing words."
    assert student_edition.strip_solutions("no exercises here") == ("no exercises here", [])
    with pytest.raises(ValueError, match="not closed"):
        student_edition.strip_solutions("```{admonition} Solution\n:class: dropdown\nunfinished")


def test_a_notebook_keeps_its_code_and_outputs():
    notebook = {"cells": [{"cell_type": "markdown", "source": MARKDOWN, "metadata": {}},
                          {"cell_type": "code", "source": "print('```{admonition} Solution')", "outputs": [], "metadata": {}}]}
    stripped, removed = student_edition.strip_notebook(notebook)
    assert len(removed) == 2 and "42" not in stripped["cells"][0]["source"]
    assert stripped["cells"][1] == notebook["cells"][1]  # code is never touched
    assert "42" in notebook["cells"][0]["source"]  # the input is not modified


def test_streams_merged_in_place_are_not_shown_twice():
    cell = {"cell_type": "code", "source": "", "metadata": {}, "outputs": [
        {"output_type": "stream", "name": "stdout", "text": "a\nb\n"},
        {"output_type": "display_data", "data": {"text/plain": "fig"}, "metadata": {}},
        {"output_type": "stream", "name": "stdout", "text": "b\n"},  # a stale copy of the merged part
        {"output_type": "stream", "name": "stderr", "text": "w\n"},
        {"output_type": "stream", "name": "stdout", "text": "c\n"},  # not merged yet: appended
    ]}
    merged = student_edition.merge_streams({"cells": [cell]})["cells"][0]["outputs"]
    assert [o.get("name") for o in merged] == ["stdout", None, "stderr"]
    assert merged[0]["text"] == "a\nb\nc\n"


CHAPTERS = sorted(p.stem for p in (ROOT / "book").glob("*.ipynb") if p.stem != "results")


def _exercises(chapter: str) -> str:
    """The chapter's markdown from its "## Exercises" heading on."""
    notebook = json.loads((ROOT / "book" / f"{chapter}.ipynb").read_text())
    markdown = "\n".join("".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "markdown")
    return markdown[markdown.index("## Exercises"):]


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_every_exercise_has_a_solution(chapter):
    exercises = _exercises(chapter)
    numbered = re.findall(r"^\d+\. \*\*", exercises, flags=re.M)
    _, solutions = student_edition.strip_solutions(exercises)
    assert numbered and len(solutions) == len(numbered), f"{len(numbered)} exercises, {len(solutions)} solutions"


# Exercises answered by a derivation or by a package checker, not by a run: (chapter, number)
NOT_MEASURED = {
    ("infonce", 1): "a limit, derived",
    ("scl", 3): "what the code returns for a batch without positives, read from the code",
    ("scaling", 2): "why batch norm breaks caching, argued",
    ("raw_encoder", 2): "multiply-adds of the output layer, counted",
    ("raw_encoder", 3): "what a resumed run does, read from train.train's checkpoints",
}


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_every_solution_states_what_a_correct_run_gives(chapter):
    """For teachers: a numeric exercise's solution states the range measured in this build; a coding
    exercise names its checker; the few derivations are listed above."""
    questions = re.split(r"^(\d+)\. \*\*", _exercises(chapter), flags=re.M)[1:]
    unanswered = []
    for number, text in zip(questions[::2], questions[1::2]):
        question = text.split("```{admonition} Solution")[0]
        _, solutions = student_edition.strip_solutions(text)
        if "exercises.check_" in question or (chapter, int(number)) in NOT_MEASURED:
            continue
        if not any("Measured in this build" in " ".join(s.split()) for s in solutions):
            unanswered.append(int(number))
    assert not unanswered, f"{chapter}: exercises {unanswered} state no range measured in this build"
