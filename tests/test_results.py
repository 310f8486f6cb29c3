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
    assert list(table.index) == [c.title for c in ct.chapters.CHAPTERS.values() if c.paper is not None]
    assert table.loc["Adversarial contrastive learning", "measured (quick)"] == "SCAL: clean accuracy 81.25 %"
    assert table.loc["SimCSE", "measured (quick)"] == "not recorded"
    assert "77.29" in table.loc["Adversarial contrastive learning", "paper"]
    markdown = results.to_markdown(table).splitlines()
    assert markdown[0] == "| chapter | paper | full profile | measured (quick) |"
    assert markdown[1] == "|---|---|---|---|" and len(markdown) == len(table) + 2
    assert {c.key for c in ct.chapters.CHAPTERS.values() if c.paper is not None} == set(ct.CHAPTERS) - {"scaling"}


def test_an_estimate_is_recorded_with_its_interval_and_seeds(results_dir):
    import numpy as np

    labels = np.arange(200) % 4
    runs = np.stack([np.where(np.arange(200) % 5 == s, (labels + 1) % 4, labels) for s in range(3)])  # 80 % right
    estimate = ct.stats.estimate(runs, labels, n_boot=200)
    assert estimate.value == pytest.approx(80.0) and estimate.low < 80 < estimate.high and estimate.seeds == 3
    results.record(ct.profile("simclr"), "SimCLR: linear probe", estimate, "%")
    results.record(ct.profile("simclr"), "plain", 1.5)
    frame = results.load()
    row = frame[frame["measure"] == "SimCLR: linear probe"].iloc[0]
    assert (row["value"], row["low"], row["high"], row["seeds"]) == (80.0, estimate.low, estimate.high, 3)
    measured = results.results_table(frame).loc["SimCLR intuition", "measured (quick)"]
    assert f"SimCLR: linear probe 80.00 % [{estimate.low:.2f}, {estimate.high:.2f}] (3 seeds)" in measured
    assert "plain 1.50" in measured and "plain 1.50 [" not in measured


def test_a_comparison_is_recorded_as_its_difference_with_the_fewer_seeds(results_dir):
    import numpy as np

    labels = np.arange(200) % 4
    right = np.stack([labels] * 3)
    wrong = np.stack([np.where(np.arange(200) % 4 == s, (labels + 1) % 4, labels) for s in range(2)])  # 75 % right
    comparison = ct.stats.compare(right, wrong, labels, names=("A", "B"), n_boot=200)
    results.record(ct.profile("infonce"), "A - B: linear probe", comparison, "points")
    row = results.load().iloc[0]
    assert (row["value"], row["low"], row["high"], row["seeds"]) == (
        comparison.difference, comparison.low, comparison.high, 2)
    assert comparison.difference == pytest.approx(25.0)


def test_results_dir_is_found_from_inside_the_book(tmp_path, monkeypatch):
    monkeypatch.delenv("CT_RESULTS_DIR", raising=False)
    monkeypatch.delenv("CT_RUNS_DIR", raising=False)
    (tmp_path / "_config.yml").write_text("")
    (tmp_path / "_toc.yml").write_text("")
    (tmp_path / "book").mkdir()
    monkeypatch.chdir(tmp_path / "book")
    assert results.results_dir() == tmp_path / "_build" / "results"


def test_records_go_beside_the_run_store(tmp_path, monkeypatch):
    monkeypatch.delenv("CT_RESULTS_DIR", raising=False)
    monkeypatch.setenv("CT_RUNS_DIR", str(tmp_path / "runs"))
    assert results.results_dir() == tmp_path / "runs" / "results"


def test_run_store_keys_runs_by_chapter_profile_name_and_settings(tmp_path, monkeypatch):
    from contrastive_tutorial import runs

    monkeypatch.delenv("CT_RUNS_DIR", raising=False)
    monkeypatch.setattr(runs, "DRIVE", tmp_path / "no-drive")
    P = ct.profile("simcse")
    assert runs.checkpoint(P, "unsup") is None  # the quick profile keeps no runs by default
    monkeypatch.setenv("CT_RUNS_DIR", str(tmp_path))
    path = runs.checkpoint(P, "unsup", {"seed": 0})
    assert path.parent == tmp_path / "simcse" / P.name and path.name.startswith("unsup-") and path.suffix == ".pt"
    assert runs.checkpoint(P, "unsup", {"seed": 0}) == path  # the same run, the same file
    assert runs.checkpoint(P, "unsup", {"seed": 1}) != path  # another setting, another run
    assert runs.checkpoint(P, "sup", {"seed": 0}) != path
    monkeypatch.delenv("CT_RUNS_DIR")
    (tmp_path / "drive").mkdir()
    monkeypatch.setattr(runs, "DRIVE", tmp_path / "drive")
    assert runs.runs_dir("quick") == tmp_path / "drive" / "contrastive-tutorial-runs"  # Colab with Drive
    monkeypatch.setattr(runs, "DRIVE", tmp_path / "no-drive")
    assert runs.runs_dir("full").name == "runs"
    with pytest.raises(ValueError, match="name"):
        runs.checkpoint(P, "a b")
    with pytest.raises(TypeError, match="Profile"):
        runs.checkpoint("simcse", "unsup")


def test_records_refuse_paths_and_values_that_are_not_numbers(results_dir):
    from types import MappingProxyType

    P = ct.profile("simclr")
    escaping = ct.Profile("../../x", "simclr", "test", P.device, MappingProxyType({}))
    with pytest.raises(ValueError, match="profile.name must be a plain name"):
        results.record(escaping, "probe", 1.0)
    for bad in (True, "0.5", [1.0]):
        with pytest.raises(TypeError, match="must be a real number"):
            results.record(P, "probe", bad)
    import numpy as np

    results.record(P, "probe", np.float32(0.5))  # numpy scalars are numbers
    (results_dir / "simclr.quick.json").write_text("{not json")
    with pytest.raises(ValueError, match="simclr.quick.json: not a results file"):
        results.load()
