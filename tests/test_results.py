"""Recorded results: what the chapters write and what the Results page reads."""

from __future__ import annotations

import math

import pytest

import contrastive_tutorial as ct
from contrastive_tutorial import results


@pytest.fixture
def results_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("CT_RESULTS_DIR", str(tmp_path))
    monkeypatch.setenv("CT_PROFILE", "quick")
    return tmp_path


def test_records_round_trip_and_overwrite_by_measure(results_dir):
    P = ct.profile("simclr")
    results.record(P, "SimCLR: linear probe", 97.5, "%")
    results.record(P, "SimCLR: linear probe", 98.0, "%")
    results.record(ct.profile("sccl"), "ACC", 70)
    frame = results.load()
    assert sorted(frame["chapter"]) == ["sccl", "simclr"]
    row = frame[frame["chapter"] == "simclr"].iloc[0]
    assert (row["profile"], row["measure"], row["value"], row["unit"]) == ("quick", "SimCLR: linear probe", 98.0, "%")
    assert (results_dir / "simclr.quick.json").exists()


def test_bad_records_are_refused(results_dir):
    P = ct.profile("simclr")
    with pytest.raises(ValueError, match="finite"):
        results.record(P, "x", math.nan)
    with pytest.raises(ValueError, match="measure"):
        results.record(P, "", 1.0)
    with pytest.raises(TypeError, match="Profile"):
        results.record("simclr", "x", 1.0)
    assert results.load().empty


def test_table_has_every_chapter_with_its_paper_and_measures(results_dir):
    results.record(ct.profile("adversarial"), "SCAL: clean accuracy", 81.25, "%")
    table = results.results_table(results.load())
    assert list(table.index) == [paper["title"] for paper in results.PAPERS.values()]
    assert table.loc["Adversarial contrastive learning", "measured (quick)"] == "SCAL: clean accuracy 81.25 %"
    assert table.loc["SimCSE", "measured (quick)"] == "not recorded"
    assert "77.29" in table.loc["Adversarial contrastive learning", "paper"]
    markdown = results.to_markdown(table).splitlines()
    assert markdown[0] == "| chapter | paper | full profile | measured (quick) |"
    assert markdown[1] == "|---|---|---|---|" and len(markdown) == len(table) + 2
    assert set(results.PAPERS) == set(ct.CHAPTERS)


def test_results_dir_is_found_from_inside_the_book(tmp_path, monkeypatch):
    monkeypatch.delenv("CT_RESULTS_DIR", raising=False)
    (tmp_path / "_config.yml").write_text("")
    (tmp_path / "_toc.yml").write_text("")
    (tmp_path / "book").mkdir()
    monkeypatch.chdir(tmp_path / "book")
    assert results.results_dir() == tmp_path / "_build" / "results"
