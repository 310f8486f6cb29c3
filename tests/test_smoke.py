"""Every chapter notebook, end to end, under the GPU profiles ``colab`` and ``full`` in smoke mode.

Smoke mode (:mod:`contrastive_tutorial.smoke`) runs the real architectures at their real sizes
with random weights, stand-ins with the hub data sets' schemas and one or two batches of
everything. It checks code paths and shapes, not results: a chapter that passes here may
still miss its paper; one that fails here would fail on Colab. Without network access, as in
CI: nothing may reach the hub, and the offline data folder is hidden so that every loader
takes the path it takes on Colab.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path

import pytest

from contrastive_tutorial import smoke

ROOT = Path(__file__).resolve().parents[1]
TIMES: dict[str, float] = {}
PEAK_MB: dict[str, int] = {}


def _runs() -> list:
    """(notebook, profile) pairs: ``colab`` and ``full``, or ``full`` alone where clamping makes them the same.

    After :func:`smoke.clamp` most chapters' colab and full settings coincide (they differ in
    amounts only), so a second run would execute the same code with the same settings; such a
    notebook runs once, under ``full``, and its test id says ``full=colab``. Which profile a
    notebook reads comes from its chapter record (``tests/test_chapters.py`` checks it).
    """
    from contrastive_tutorial import profile
    from contrastive_tutorial.chapters import CHAPTERS

    params = []
    for chapter in CHAPTERS.values():
        notebook = Path(chapter.notebook).name
        colab, full = (smoke.clamp(dict(profile(chapter.profile, name).settings)) for name in ("colab", "full"))
        if colab == full:
            params.append(pytest.param(chapter.notebook, "full", id=f"{notebook}-full=colab"))
        else:
            params += [pytest.param(chapter.notebook, p, id=f"{notebook}-{p}") for p in ("colab", "full")]
    return params


# Smoke runs are small steps of large models: mostly one-threaded work. Two kernels of one thread
# each finished the suite in about two thirds of the time of one kernel of two threads. Memory is
# what limits pairing them: each kernel reports its peak (benchmarks/RESULTS.md), and SCL's runs,
# which fine-tune RoBERTa-large, peak at 16.6 GB, the other text chapters at 3.6-7.9 GB and the
# image chapters at 2.0-2.3 GB. Two SCL runs side by side killed a kernel in a clean-clone CI run.
# _schedule starts a run only while the estimated peaks of the running ones and its own fit in
# MEMORY_BUDGET_GB: an SCL run goes beside an image chapter, never beside another text chapter.
WORKERS = int(os.environ.get("CT_SMOKE_WORKERS", "2"))
PEAK_GB = {"roberta-large": 17.0, "bert-base-uncased": 8.0}  # by the largest model a run loads
DEFAULT_PEAK_GB = 3.0  # the image chapters (measured 2.0-2.3 GB)
MEMORY_BUDGET_GB = float(os.environ.get("CT_SMOKE_MEMORY_GB", "21"))
PEAK_CELL = "import resource; print('CT_PEAK_RSS_MB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)"


def _peak_gb(chapter: str, profile: str) -> float:
    """The estimated peak memory of a smoke run of ``chapter`` under ``profile``, from the models it loads."""
    from contrastive_tutorial import profile as settings
    from contrastive_tutorial.chapters import CHAPTERS

    record = next(c for c in CHAPTERS.values() if c.notebook == chapter)
    values = smoke.clamp(dict(settings(record.profile, profile).settings)).values()
    return max([PEAK_GB[v] for v in values if isinstance(v, str) and v in PEAK_GB], default=DEFAULT_PEAK_GB)


@pytest.fixture(scope="module")
def model_cache(tmp_path_factory) -> Path:
    """Random-weight models are built once, before any notebook runs, and shared by every notebook of the run."""
    cache = tmp_path_factory.mktemp("smoke_models")
    before = os.environ.get("CT_SMOKE_CACHE")
    os.environ["CT_SMOKE_CACHE"] = str(cache)
    try:
        for model_id in smoke.STAND_IN_MODELS:
            smoke.model_folder(model_id)
    finally:
        os.environ.pop("CT_SMOKE_CACHE") if before is None else os.environ.__setitem__("CT_SMOKE_CACHE", before)
    return cache


def _environment(base: dict[str, str], profile: str, cache: Path, runs: Path) -> dict[str, str]:
    """A kernel's environment from ``base``, a copy of os.environ taken in the main thread (pytest
    rewrites PYTEST_CURRENT_TEST there while workers run: reading os.environ in a worker raced it)."""
    env = {k: v for k, v in base.items() if k not in ("CT_DATA_DIR", "PYTEST_CURRENT_TEST")}
    env.update(CT_SMOKE="1", CT_PROFILE=profile, CT_SMOKE_CACHE=str(cache), CT_RUNS_DIR=str(runs), CT_PROGRESS="0",
               HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    if WORKERS > 1:
        env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return env


def _execute(chapter: str, profile: str, cache: Path, runs: Path, base: dict[str, str]):
    """Run one chapter notebook under ``profile`` in smoke mode: ``(notebook, seconds, peak MB)``.

    A last cell, removed again afterwards, has the kernel print its peak resident memory.
    """
    import nbclient
    import nbformat

    notebook = nbformat.read(ROOT / f"{chapter}.ipynb", as_version=4)
    notebook.cells.append(nbformat.v4.new_code_cell(PEAK_CELL))
    client = nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(ROOT / "book")}})
    start = time.perf_counter()
    client.execute(env=_environment(base, profile, cache, runs))
    seconds = time.perf_counter() - start
    peak = re.search(r"CT_PEAK_RSS_MB (\d+)", "".join(o.get("text", "") for o in notebook.cells[-1].outputs))
    notebook.cells.pop()
    return notebook, seconds, int(peak.group(1)) if peak else -1


def _schedule(runs: list[tuple[str, str]], start, budget: float | None = None) -> tuple[dict, Callable[[], None]]:
    """Run ``start(chapter, profile)`` for every run on ``WORKERS`` threads: ``({run: Future}, stop)``.

    A free worker takes the first waiting run whose estimated peak (:func:`_peak_gb`) fits in
    ``budget`` (default ``MEMORY_BUDGET_GB``) beside the running ones; with nothing running, any
    run may start. ``stop()`` drops the runs not yet started and waits for the others.
    """
    budget = MEMORY_BUDGET_GB if budget is None else budget
    futures = {run: Future() for run in runs}
    waiting = [(run, _peak_gb(*run)) for run in runs]
    turn = threading.Condition()
    running: list[float] = []

    def work() -> None:
        while True:
            with turn:
                while True:
                    if not waiting:
                        return
                    pick = next((item for item in waiting if not running or sum(running) + item[1] <= budget), None)
                    if pick is not None:
                        break
                    turn.wait()
                waiting.remove(pick)
                running.append(pick[1])
            (run, need), future = pick, futures[pick[0]]
            try:
                future.set_result(start(*run))
            except BaseException as error:  # noqa: BLE001 (the test that waits for it reports it)
                future.set_exception(error)
            finally:
                with turn:
                    running.remove(need)
                    turn.notify_all()

    threads = [threading.Thread(target=work, daemon=True) for _ in range(WORKERS)]
    for thread in threads:
        thread.start()

    def stop() -> None:
        with turn:
            for (run, _) in waiting:
                futures[run].cancel()
            waiting.clear()
            turn.notify_all()
        for thread in threads:
            thread.join()

    return futures, stop


@pytest.fixture(scope="module")
def smoke_runs(request, model_cache: Path, tmp_path_factory):
    """The selected (chapter, profile) runs, started at once on ``WORKERS`` kernels; each test waits for its own."""
    pytest.importorskip("nbformat")
    pytest.importorskip("nbclient")
    selected = [(item.callspec.params["chapter"], item.callspec.params["profile"]) for item in request.session.items
                if getattr(item, "originalname", None) == "test_chapter_runs_in_smoke_mode"]
    base = dict(os.environ)
    folders = {run: tmp_path_factory.mktemp("runs") / "runs" for run in selected}  # made here: mktemp is not thread-safe
    futures, stop = _schedule(selected, lambda chapter, profile: _execute(
        chapter, profile, model_cache, folders[chapter, profile], base))
    yield futures
    stop()


@pytest.mark.parametrize("chapter,profile", _runs())
def test_chapter_runs_in_smoke_mode(chapter: str, profile: str, smoke_runs) -> None:
    import nbclient

    try:
        notebook, seconds, peak = smoke_runs[chapter, profile].result()
    except nbclient.exceptions.CellExecutionError as error:
        pytest.fail(f"{chapter}.ipynb under CT_PROFILE={profile} in smoke mode: {error}", pytrace=False)
    TIMES[f"{chapter}/{profile}"], PEAK_MB[f"{chapter}/{profile}"] = seconds, peak
    printed = "".join(out.get("text", "") for cell in notebook.cells if cell.cell_type == "code"
                      for out in cell.get("outputs", []))
    assert smoke.BANNER in printed, "a chapter in smoke mode must print its profile, which says it is a smoke run"


def test_clamp_cuts_amounts_and_keeps_shapes() -> None:
    from contrastive_tutorial import profile

    full = {**profile("simcse", "full").settings, **profile("scl", "full").settings}
    cut = smoke.clamp(full)
    assert cut["max_steps"] == 2 and cut["sup_epochs"] == 1 and cut["batch_size"] == 8
    assert cut["seeds"] == (0,) and cut["shots"] == (2,) and cut["sweep_temperatures"] == (0.01, 1.0)
    assert cut["max_length"] == full["max_length"] and cut["sts_max_pairs"] is None
    # how often to evaluate, and which of several data sets of one loader, change no code path: one run
    for chapter in ("beyond", "sccl"):
        colab, full = (smoke.clamp(dict(profile(chapter, name).settings)) for name in ("colab", "full"))
        assert colab == full, chapter
    assert smoke.clamp(dict(profile("sccl", "full").settings))["datasets"] == ("searchsnippets",)  # the pictures' set


def test_stand_ins_have_the_hub_schemas(monkeypatch) -> None:
    """The columns and label names the loaders read, as the hub sets have them (checked on their cards)."""
    monkeypatch.setenv("CT_SMOKE", "1")
    assert smoke.load_dataset("stanfordnlp/sst2")["test"]["label"][0] == -1  # hidden test labels
    sick = smoke.load_dataset("RobZamp/sick", revision="refs/convert/parquet", split="train")
    assert {"sentence_A", "sentence_B", "relatedness_score", "label"} <= set(sick.column_names)
    assert sick.features["label"].names == ["entailment", "neutral", "contradiction"]
    cifar = smoke.load_dataset("uoft-cs/cifar10")
    assert cifar["train"].features["img"].__class__.__name__ == "Image" and len(cifar["train"].features["label"].names) == 10
    assert max(smoke.load_dataset("sentence-transformers/stsb", split="test")["score"]) <= 1.0  # normalised to [0, 1]
    with pytest.raises(ValueError, match="no stand-in"):
        smoke.load_dataset("glue")
    with pytest.raises(ValueError, match="no split"):
        smoke.load_dataset("mteb/sts13-sts", split="train")


def teardown_module() -> None:
    if TIMES:
        print(f"\nsmoke runs (s, {WORKERS} at a time): " + json.dumps({k: round(v) for k, v in TIMES.items()}))
        print("smoke runs' peak resident memory (MB): " + json.dumps(PEAK_MB))


def test_smoke_models_are_the_real_kinds(model_cache: Path, monkeypatch) -> None:
    """RoBERTa's tokenizer has no token_type_ids; SCCL's DistilBERT has no MLM head; sizes are real."""
    from contrastive_tutorial.encoders import load_text_model
    from contrastive_tutorial.methods.promptbert import load_mlm

    monkeypatch.setenv("CT_SMOKE", "1")
    monkeypatch.setenv("CT_SMOKE_CACHE", str(model_cache))
    tokenizer, model = load_text_model("roberta-large")
    assert "token_type_ids" not in tokenizer(["a cat"]) and tokenizer.pad_token_id == model.config.pad_token_id == 1
    assert (model.config.hidden_size, model.config.num_hidden_layers) == (1024, 24)
    tokenizer, mlm = load_mlm("bert-base-uncased")
    assert tokenizer.mask_token_id == 103 and mlm.config.vocab_size == 30522 and "token_type_ids" in tokenizer(["a"])
    with pytest.raises(ValueError, match="no pretrained MLM head"):
        load_mlm("sentence-transformers/distilbert-base-nli-stsb-mean-tokens")
    with pytest.raises(ValueError, match="no stand-in"):
        load_text_model("gpt2")


def test_smoke_runs_keep_apart_and_record_nothing(tmp_path: Path, monkeypatch) -> None:
    import contrastive_tutorial as ct
    import contrastive_tutorial.results  # noqa: F401 (not imported by the package itself)

    monkeypatch.setenv("CT_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("CT_RESULTS_DIR", str(tmp_path / "results"))
    real = ct.runs.checkpoint(ct.profile("simcse", "full"), "unsup")
    monkeypatch.setenv("CT_SMOKE", "1")
    P = ct.profile("simcse", "full")
    assert smoke.BANNER in str(P) and P.max_steps == 2
    assert ct.runs.checkpoint(P, "unsup").parent.name == "full-smoke" and real.parent.name == "full"
    ct.results.record(P, "sts_avg", 12.3)
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").iterdir())
    from contrastive_tutorial.train import precision

    assert precision("cpu").name == "fp32"  # emulated bfloat16 is far slower on most CPUs (contrastive_tutorial.smoke)


def test_runs_pair_only_within_the_memory_budget(monkeypatch) -> None:
    """SCL's RoBERTa-large runs never go beside another text chapter; image chapters fill the other worker."""
    peaks = {values: _peak_gb(*values) for values in (p.values for p in _runs())}
    assert {v for v, gb in peaks.items() if gb > 10} == {("book/scl", "colab"), ("book/scl", "full")}
    assert peaks["book/infonce", "full"] == DEFAULT_PEAK_GB and peaks["book/simcse", "full"] == 8.0
    monkeypatch.setattr(f"{__name__}.WORKERS", 2)
    runs = [("book/scl", "colab"), ("book/scl", "full"), ("book/simcse", "full"), ("book/infonce", "full"),
            ("book/simclr", "full")]
    log, lock = [], threading.Lock()

    def start(chapter: str, profile: str) -> str:
        with lock:
            log.append(("start", chapter, profile))
        time.sleep(0.05 if "scl" in chapter else 0.01)
        with lock:
            log.append(("end", chapter, profile))
        if chapter == "book/simclr":
            raise RuntimeError("a failing run")
        return chapter

    futures, stop = _schedule(runs, start, budget=21.0)
    assert futures["book/scl", "full"].result(timeout=10) == "book/scl"
    with pytest.raises(RuntimeError, match="a failing run"):
        futures["book/simclr", "full"].result(timeout=10)
    stop()
    running, most = set(), 0.0
    for event, chapter, profile in log:
        running = running | {(chapter, profile)} if event == "start" else running - {(chapter, profile)}
        most = max(most, sum(peaks[r] for r in running))
    assert most <= 21.0 and log.index(("start", "book/infonce", "full")) < log.index(("start", "book/scl", "full"))
