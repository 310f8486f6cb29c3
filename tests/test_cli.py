"""The command line: recipes listed, one trained into a run store, a rerun served from it, and the
same recipe under torchrun with two processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from contrastive_tutorial.__main__ import main
from contrastive_tutorial.recipes import RECIPES


def test_list_names_every_chapter_recipe(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in ("simclr", "moco", "byol", "simsiam", "swav", "barlow_twins", "simcse", "simcse_sup", "promptbert",
                 "scl", "scal", "uscal", "sccl"):
        assert name in RECIPES and name in out


def test_train_writes_the_run_store_and_a_rerun_loads_it(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("CT_RUNS_DIR", raising=False)
    args = ["train", "simclr", "--profile", "quick", "--out", str(tmp_path), "--set", "epochs=1"]
    assert main(args) == 0
    result = json.loads((tmp_path / "simclr" / "quick" / "simclr-seed0.json").read_text())
    assert result["settings"]["epochs"] == 1 and result["processes"] == 1
    assert 0 < result["scores"]["linear_probe"] <= 1 and len(result["history"]) == 1
    (weights,) = (tmp_path / "simclr" / "quick").glob("simclr-*.pt")
    stamp = weights.stat().st_mtime_ns
    assert main(args) == 0  # served from the finished run: same scores, checkpoint untouched
    again = json.loads((tmp_path / "simclr" / "quick" / "simclr-seed0.json").read_text())
    assert again["scores"] == result["scores"] and weights.stat().st_mtime_ns == stamp
    capsys.readouterr()


def test_bad_arguments_are_named(tmp_path, monkeypatch):
    monkeypatch.delenv("CT_RUNS_DIR", raising=False)
    with pytest.raises(ValueError, match="unknown settings.*'epoch'"):
        main(["train", "simclr", "--profile", "quick", "--out", str(tmp_path), "--set", "epoch=1"])
    with pytest.raises(ValueError, match="recipe must be one of"):
        main(["train", "simclr2", "--profile", "quick", "--out", str(tmp_path)])
    with pytest.raises(SystemExit, match="KEY=VALUE"):
        main(["train", "simclr", "--profile", "quick", "--out", str(tmp_path), "--set", "epochs"])


def test_torchrun_two_processes_run_a_recipe(tmp_path):
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    env = {k: v for k, v in os.environ.items() if k != "CT_RUNS_DIR"}
    env["OMP_NUM_THREADS"] = "1"
    done = subprocess.run(torchrun + ["-m", "contrastive_tutorial", "train", "moco", "--profile", "quick",
                                      "--out", str(tmp_path), "--set", "epochs=1"],
                          capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((tmp_path / "beyond" / "quick" / "moco-seed0.json").read_text())
    assert result["processes"] == 2 and result["scores"]["knn"] > 0
    assert len(list((tmp_path / "beyond" / "quick").glob("moco-*.rank*.pt"))) == 2  # one checkpoint per process


def test_a_text_recipe_saves_its_encoder_for_sentence_transformers(tmp_path, monkeypatch, capsys):
    """simcse from the book's raw model (--set text_model=...): the folder loads in SentenceTransformer and
    encodes as the chapter's encoder does ([CLS] without the MLP)."""
    import contrastive_tutorial as ct
    from sentence_transformers import SentenceTransformer

    monkeypatch.delenv("CT_RUNS_DIR", raising=False)
    assert main(["train", "simcse", "--profile", "quick", "--out", str(tmp_path), "--set", "max_steps=2",
                 "--set", "eval_every=1", "--set", "sts_max_pairs=40", "--set", f"text_model={ct.RAW_MODEL}"]) == 0
    folder = tmp_path / "simcse" / "quick" / "simcse-seed0"
    assert f"saved the trained encoder in {folder}" in capsys.readouterr().out
    sentences = ["a man is playing a guitar.", "two dogs run on the beach."]
    theirs = SentenceTransformer(str(folder), device="cpu").encode(sentences, convert_to_tensor=True)
    ours = ct.encoders.TextEncoder.from_pretrained(str(folder), pooler="cls_before_pooler").encode(sentences)
    import torch

    torch.testing.assert_close(theirs.cpu(), ours, atol=1e-5, rtol=1e-4)


def test_promptbert_saves_a_prompt_encoder_that_loads_back(tmp_path):
    import torch

    import contrastive_tutorial as ct
    from contrastive_tutorial.methods import promptbert as pb

    tokenizer, model = ct.encoders.load_text_model(ct.RAW_MODEL)
    encoder = pb.PromptEncoder(model, tokenizer, 'This sentence : "[X]" means [MASK] .', denoise=True)
    folder = pb.save_prompt_encoder(encoder, tmp_path / "prompt")
    again = pb.load_prompt_encoder(folder)
    assert again.template.text == encoder.template.text and again.denoise
    sentences = ["a cat sat on the mat.", "it rained all day"]
    torch.testing.assert_close(again.encode(sentences), encoder.encode(sentences))
    with pytest.raises(ValueError, match="not a folder written by save_prompt_encoder"):
        pb.load_prompt_encoder(tmp_path)


def test_pretrain_is_listed_documented_and_refuses_bad_settings(tmp_path, capsys):
    assert main(["list"]) == 0
    assert "pretrain" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["pretrain", "--help"])
    assert "--profile quick reproduces the shipped model" in capsys.readouterr().out.replace("\n", " ").replace("  ", " ")
    with pytest.raises(SystemExit, match=r"pretrain: mask_rate must be in \(0, 1\)"):
        main(["pretrain", "--out", str(tmp_path), "--set", "mask_rate=1.5"])
    with pytest.raises(SystemExit, match="pretrain: unknown pretraining settings"):
        main(["pretrain", "--out", str(tmp_path), "--set", "hidden=64"])
