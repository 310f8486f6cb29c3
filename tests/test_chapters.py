"""The chapter records agree with the table of contents, the notebooks, the profiles and the map."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

import contrastive_tutorial as ct
from contrastive_tutorial.chapters import CHAPTERS, chapter

ROOT = Path(__file__).resolve().parents[1]


def test_the_table_of_contents_lists_the_chapters_in_order_and_in_their_parts():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    listed = [(part["caption"], entry["file"]) for part in toc["parts"] for entry in part["chapters"]]
    chapters_only = [(p, f) for p, f in listed if p != "Back matter"]
    assert chapters_only == [(c.part, c.notebook) for c in CHAPTERS.values()]


def test_each_notebook_exists_reads_its_profile_and_has_its_title():
    for c in CHAPTERS.values():
        text = (ROOT / f"{c.notebook}.ipynb").read_text(encoding="utf-8")
        assert re.search(rf'profile\(\\?"{c.profile}\\?"', text), c.key
        assert c.profile in ct.CHAPTERS, c.key
        first_heading = re.search(r'"# ([^"\\]+)', text).group(1).strip()
        assert first_heading.lower().startswith(c.title.split(":")[0].lower()), (c.key, first_heading)


def test_prerequisites_come_earlier_in_the_book():
    order = list(CHAPTERS)
    for c in CHAPTERS.values():
        for before in c.prerequisites:
            assert order.index(before) < order.index(c.key), (c.key, before)


def test_every_profiled_chapter_has_a_paper_and_the_map_is_drawn_from_the_records(tmp_path):
    assert {c.key for c in CHAPTERS.values() if c.paper is not None} == set(ct.CHAPTERS) - {"scaling"}
    assert set(CHAPTERS) == set(ct.CHAPTERS)  # every chapter has its own profile
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_map", ROOT / "tools" / "make_map.py")
    make_map = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_map)
    # the graph, not one renderer's bytes (another matplotlib draws the same map differently):
    # the book's map holds every box's title and lines, in order, in its chapter's colour
    shipped = ROOT / "book" / "map.svg"
    assert make_map.svg_texts(shipped) == make_map.expected_texts(), "book/map.svg is out of date: run python tools/make_map.py"
    svg = shipped.read_text().lower()
    assert all(box["colour"].lower() in svg for box in make_map.boxes())
    make_map.draw(tmp_path / "map.svg")
    assert make_map.svg_texts(tmp_path / "map.svg") == make_map.expected_texts()


def test_an_unknown_chapter_is_named():
    assert chapter("sccl").title == "SCCL"
    with pytest.raises(ValueError, match="chapter must be one of"):
        chapter("moco")


def test_the_course_page_is_generated_from_the_chapters():
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_course", ROOT / "tools" / "make_course.py")
    make_course = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_course)
    assert [k for week in make_course.WEEKS for k in week] == list(CHAPTERS)
    text = make_course.page()
    assert (ROOT / "book" / "course.md").read_text() == text, "run python tools/make_course.py"
    for c in CHAPTERS.values():
        assert f"]({Path(c.notebook).name}.ipynb)" in text and make_course.learning_goals(c.notebook), c.key
        assert make_course.checked_exercise(c.key), f"{c.key}: no checked exercise"
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    assert "book/course" in [e["file"] for part in toc["parts"] for e in part["chapters"]]
