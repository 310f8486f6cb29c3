"""Bad input, second pass: each kind gets an error that names the argument, never a silent result
or another library's raw message (the issue "Bad input, second pass")."""

from __future__ import annotations

import pytest
import torch

import contrastive_tutorial as ct
from contrastive_tutorial import checks, data, results
from contrastive_tutorial.encoders import ProjectionHead, image_encoder
from contrastive_tutorial.views import ImageViews


def test_checks_refuse_what_is_not_the_kind_asked_for():
    assert checks.count(3, "n") == 3 and checks.count(None, "n", optional=True) is None
    for bad in (0, -2, True, 1.0, "3", None):
        with pytest.raises(ValueError, match="n must be a positive integer"):
            checks.count(bad, "n")
    with pytest.raises(ValueError, match="k must be an integer >= 2"):
        checks.count(1, "k", minimum=2)
    assert checks.fraction(0.25, "f") == 0.25
    assert checks.real(2, "x") == 2.0 and checks.pair([1, 2], "r") == (1.0, 2.0)
    for bad in ("1", None, float("nan"), True):
        with pytest.raises(ValueError, match="x must be a finite real number"):
            checks.real(bad, "x")
    for bad in ((1,), (1, 2, 3), "ab", 5, (1, "b")):
        with pytest.raises(ValueError, match="r must be a pair"):
            checks.pair(bad, "r")


def test_profile_names_the_chapter_and_the_missing_setting():
    with pytest.raises(ValueError, match="chapter must be one of"):
        ct.profile(["simcse"])
    with pytest.raises(ValueError, match="profile name must be one of"):
        ct.profile("simcse", ["quick"])
    P = ct.profile("simcse", "quick")
    with pytest.raises(KeyError, match="no setting 'batchsize'; it has .*'batch_size'"):
        P["batchsize"]
    with pytest.raises(AttributeError, match="no setting 'batchsize'; it has"):
        P.batchsize


@pytest.mark.parametrize("variable", ["CT_DATA_DIR", "CT_RUNS_DIR", "CT_RESULTS_DIR"])
def test_a_folder_variable_naming_a_file_is_refused(variable, tmp_path, monkeypatch):
    """Before: the data loaders went to the hub without saying why; records failed with 'Not a directory'."""
    a_file = tmp_path / "not_a_folder.txt"
    a_file.write_text("x")
    monkeypatch.setenv(variable, str(a_file))
    with pytest.raises(ValueError, match=f"{variable} must name a folder, got the file"):
        if variable == "CT_DATA_DIR":
            data.load_sts("sts13")
        else:
            results.record(ct.profile("simcse", "quick"), "a measure", 1.0)


def test_image_encoders_and_heads_say_what_shape_they_need():
    torch.manual_seed(0)
    for name in ("small_cnn", "resnet18"):
        encoder = image_encoder(name, 3, 64 if name == "small_cnn" else 512)
        with pytest.raises(ValueError, match=r"images must be a \(B, 3, H, W\) tensor .*got \(2, 1, 8, 8\)"):
            encoder(torch.randn(2, 1, 8, 8))
        with pytest.raises(ValueError, match="images must be"):
            encoder(torch.randn(3, 8, 8))
    head = ProjectionHead(16, out_dim=8).train()
    with pytest.raises(ValueError, match="x must hold at least 2 rows in training mode"):
        head(torch.randn(1, 16))
    assert head.eval()(torch.randn(1, 16)).shape == (1, 8)  # one example in eval mode is fine


def test_views_name_a_bad_range_or_number():
    with pytest.raises(ValueError, match="scale must be a pair"):
        ImageViews(scale=(0.1,))
    with pytest.raises(ValueError, match="ratio must be a pair"):
        ImageViews(ratio="wide")
    with pytest.raises(ValueError, match="blur_sigma must satisfy"):
        ImageViews(blur_sigma=(2.0, 0.1))
    with pytest.raises(ValueError, match="flip must be a finite real number"):
        ImageViews(flip="0.5")
    with pytest.raises(ValueError, match="strength must be a finite real number"):
        ImageViews.simclr(strength="0.5")
    with pytest.raises(ValueError, match=r"strength must lie in \[0, 1.25\]"):
        ImageViews.simclr(strength=2.0)
    with pytest.raises(ValueError, match="blur_kernel must be a positive odd integer"):
        ImageViews(blur_kernel=3.0)


def test_sentences_with_a_non_string_item_say_which(tiny_encoder_parts):
    from contrastive_tutorial.encoders import TextEncoder

    tokenizer, model = tiny_encoder_parts
    encoder = TextEncoder(model, tokenizer, pooler="mean")
    for bad, kind in ((["a", None], "NoneType"), (["a", 3], "int")):
        with pytest.raises(TypeError, match=f"sentences must be a sequence of strings, got {kind} .* at position 1"):
            encoder.encode(bad)
        with pytest.raises(TypeError, match="at position 1"):
            encoder(bad)
