"""Budgets are computed from step counts and measured step costs, and the introduction shows them."""

from __future__ import annotations

from pathlib import Path

import pytest

import contrastive_tutorial as ct
from contrastive_tutorial import budget

ROOT = Path(__file__).resolve().parents[1]


def test_a_text_run_is_priced_from_its_tokens_or_the_launch_floor():
    P = ct.profile("simcse", "colab")
    runs = {what: (h100, t4) for what, h100, t4 in budget.estimate(P).runs}
    h100, t4 = runs[f"unsupervised SimCSE, {P.max_steps} steps of {P.batch_size}"]
    compute = P.batch_size * 2 * 32 * budget.H100_TOKEN  # 64 sentences, two views, 32 tokens
    assert h100 == pytest.approx(P.max_steps * max(budget.STEP_FLOOR, compute))  # launch-bound on the H100
    assert t4 == pytest.approx(P.max_steps * budget.T4_OVER_H100 * compute)  # compute-bound on the T4
    assert t4 > h100


def test_an_image_run_is_priced_per_image_and_epoch():
    P = ct.profile("infonce", "colab")
    (what, h100, t4), (_, h100_corrected, _) = budget.estimate(P).runs
    n = len(P.temperatures) * len(P.seeds) * P.epochs * budget.DATA_SIZE["cifar10"]
    assert h100 == pytest.approx(n * budget.H100_IMAGE) and t4 == pytest.approx(budget.T4_OVER_H100 * h100)
    assert h100_corrected == pytest.approx(2 / len(P.temperatures) * h100)  # the debiased and hard-negative runs


def test_colab_chapters_fit_45_minutes_on_a_t4_and_full_is_larger():
    for chapter in ct.CHAPTERS:
        colab = budget.estimate(ct.profile(chapter, "colab")).t4_minutes
        full = budget.estimate(ct.profile(chapter, "full")).t4_minutes
        assert 0 < colab <= 45, (chapter, colab)
        assert full > colab or chapter == "scaling", chapter  # the appendix runs a few batches in every profile


def test_the_introduction_shows_the_computed_table_and_the_aims():
    intro = (ROOT / "book" / "intro.md").read_text()
    assert budget.table() in intro and budget.aims() in intro


@pytest.mark.parametrize("chapter,setting,phrase", [
    ("infonce", "epochs", "{} epochs"), ("simclr", "epochs", "after {} epochs"), ("beyond", "epochs", "{} epochs each"),
    ("simcse", "max_steps", "{:,} of the epoch"), ("simcse", "eval_every", "every {} steps"),
    ("promptbert", "max_steps", "{:,} of the epoch"), ("scl", "epochs", "{} epochs"), ("scl", "seeds", "{} seeds"),
    ("adversarial", "shots", "{:,} SST-2 examples"), ("adversarial", "uscal_max_steps", "{:,} steps of USCAL"),
    ("sccl", "steps", "{:,} steps of batch"), ("sccl", "batch_size", "batch {}"),
])
def test_each_chapters_aims_quote_its_own_colab_settings_and_are_printed(chapter, setting, phrase):
    value = ct.profile(chapter, "colab")[setting]
    assert phrase.format(len(value) if isinstance(value, tuple) else value) in ct.chapters.chapter(chapter).colab
    for name in ("quick", "colab"):
        assert "The colab run is expected to show" in str(budget.estimate(ct.profile(chapter, name)))


def test_estimates_print_and_refuse_a_non_profile():
    text = str(budget.estimate(ct.profile("sccl", "colab")))
    assert "Colab T4" in text and "SCCL on" in text
    assert "two CPU cores" in str(budget.estimate(ct.profile("sccl", "quick")))
    with pytest.raises(TypeError, match="Profile"):
        budget.estimate("sccl")


def test_the_quick_profile_masked_lm_is_the_shipped_raw_model():
    """SCCL's substitution and PromptBERT's top-k run offline on the book's own MLM, which the budget knows."""
    import contrastive_tutorial as ct

    for chapter in ("sccl", "promptbert"):
        assert ct.profile(chapter, "quick").mlm_model == ct.RAW_MODEL
    assert ct.RAW_MODEL in budget.MODEL_SIZE
    assert ct.profile("sccl", "quick").augmentation == "contextual"
