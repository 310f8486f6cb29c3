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
