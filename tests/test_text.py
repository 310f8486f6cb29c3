"""Text side of the package: TextEncoder poolers and saving, STS evaluation, SimCSE, DeCLUTR, CT.

References are written independently from the papers' definitions (float64, loops) and the
encoder tests use a tiny randomly initialised BERT with the packaged MiniLM tokenizer, so
everything runs offline in seconds.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from datasets import Dataset

from contrastive_tutorial import losses as L
from contrastive_tutorial.encoders import TextEncoder, resolve_model_id
from contrastive_tutorial.evaluate import evaluate_sts, mean_cosine, spearman, sts_table
from contrastive_tutorial.methods import simcse


@pytest.fixture
def tiny(tiny_encoder_parts):
    import copy

    tokenizer, model = tiny_encoder_parts
    torch.manual_seed(1)
    return TextEncoder(copy.deepcopy(model), tokenizer, pooler="cls", max_length=12)


SENTENCES = ["A cat sits on the mat.", "Stocks fell sharply today in early trading on the exchange.", "Hi", "Rain."]


# ----------------------------------------------------------------- poolers
def test_poolers_match_their_definitions(tiny):
    tiny.eval()
    batch = tiny.tokenize(SENTENCES, tiny.eval_max_length)
    out = tiny.model(**batch, output_hidden_states=True)
    mask = batch["attention_mask"]
    for i in range(len(SENTENCES)):
        n = int(mask[i].sum())  # real tokens come first (right padding)
        last = out.last_hidden_state[i, :n].double()
        first = out.hidden_states[1][i, :n].double()  # first transformer layer, not the embeddings
        embedding = out.hidden_states[0][i, :n].double()  # the embedding layer (the pre-2022 official code)
        expected = {
            "cls_before_pooler": out.last_hidden_state[i, 0].double(),
            "cls": out.last_hidden_state[i, 0].double(),  # mlp_only_train: no MLP in eval mode
            "mean": sum(last[t] for t in range(n)) / n,
            "first_last_avg": sum((first[t] + last[t]) / 2 for t in range(n)) / n,
            "first_last_avg_embedding": sum((embedding[t] + last[t]) / 2 for t in range(n)) / n,
        }
        vectors = tiny.encode_poolers(SENTENCES, list(expected))
        for pooler, value in expected.items():
            torch.testing.assert_close(vectors[pooler][i].double(), value, rtol=1e-5, atol=1e-5)


def test_evaluation_reads_whole_sentences_and_training_truncates(tiny_encoder_parts):
    """Training batches stop at max_length; encode (what STS calls) reads the whole sentence, as the
    official SimCSE evaluation does, unless eval_max_length says otherwise."""
    import copy

    tokenizer, model = tiny_encoder_parts
    whole = TextEncoder(copy.deepcopy(model), tokenizer, pooler="mean", max_length=6)
    cut = TextEncoder(copy.deepcopy(model), tokenizer, pooler="mean", max_length=6, eval_max_length=6)
    assert whole.tokenize(SENTENCES)["input_ids"].shape[1] == 6
    assert whole.eval_max_length == model.config.max_position_embeddings
    long_sentence = [SENTENCES[1]]
    assert len(tokenizer(long_sentence[0])["input_ids"]) > 6
    with torch.no_grad():
        trained_length = whole.eval()(whole.tokenize(long_sentence), pooler="mean")
    torch.testing.assert_close(cut.encode(long_sentence), trained_length)
    assert not torch.allclose(whole.encode(long_sentence), trained_length)
    with pytest.raises(ValueError, match="eval_max_length"):
        TextEncoder(copy.deepcopy(model), tokenizer, eval_max_length=10**6)


def test_cls_mlp_is_used_in_training_only_unless_kept(tiny):
    batch = tiny.tokenize(SENTENCES)
    tiny.model.eval()  # no dropout, so only the MLP can make a difference
    raw = tiny.model(**batch).last_hidden_state[:, 0]
    tiny.train()
    tiny.model.eval()
    torch.testing.assert_close(tiny(batch), tiny.mlp(raw))
    tiny.eval()
    torch.testing.assert_close(tiny(batch), raw)
    tiny.mlp_only_train = False
    torch.testing.assert_close(tiny(batch), tiny.mlp(raw))
    torch.testing.assert_close(tiny(batch, pooler="cls_before_pooler"), raw)


def test_encode_keeps_input_order_and_truncates(tiny):
    long = " ".join(["word"] * 100)
    sentences = [long, *SENTENCES, SENTENCES[0]]
    vectors = tiny.encode(sentences, pooler="mean", batch_size=2)
    assert vectors.shape == (len(sentences), 16)
    one_by_one = torch.cat([tiny.encode([s], pooler="mean") for s in sentences])
    torch.testing.assert_close(vectors, one_by_one, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(vectors[1], vectors[-1])
    assert tiny.tokenize([long])["input_ids"].shape[1] == 12
    assert tiny.training  # encode restores the mode


def test_text_encoder_rejects_bad_input(tiny):
    with pytest.raises(ValueError, match="pooler must be one of"):
        tiny.encode(SENTENCES, pooler="max")
    with pytest.raises(TypeError, match="sequence of strings"):
        tiny.tokenize("one string")
    with pytest.raises(ValueError, match="empty"):
        tiny.tokenize([])
    with pytest.raises(ValueError, match="max_length"):
        TextEncoder(tiny.model, tiny.tokenizer, max_length=1)


@pytest.mark.parametrize("pooler,keep_mlp", [("cls_before_pooler", False), ("mean", False), ("cls", True)])
def test_saved_encoder_loads_in_sentence_transformers_and_transformers(tiny, tmp_path, pooler, keep_mlp):
    from sentence_transformers import SentenceTransformer
    from transformers import AutoModel

    tiny.mlp_only_train = not keep_mlp
    tiny.eval()
    path = tiny.save(tmp_path / "model", pooler=pooler)
    st = SentenceTransformer(str(path), device="cpu")
    torch.testing.assert_close(
        torch.as_tensor(st.encode(SENTENCES)), tiny.encode(SENTENCES, pooler=pooler), rtol=1e-4, atol=1e-5
    )
    hf = AutoModel.from_pretrained(str(path)).eval()
    batch = tiny.tokenize(SENTENCES)
    torch.testing.assert_close(hf(**batch).last_hidden_state, tiny.model(**batch).last_hidden_state)
    with pytest.raises(ValueError, match="first_last_avg"):
        tiny.save(tmp_path / "other", pooler="first_last_avg")


# ----------------------------------------------------------------- STS evaluation
def _ranks(values):
    """Average ranks (1-based), ties sharing the mean of their positions."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def _spearman_reference(x, y):
    rx, ry = _ranks(list(x)), _ranks(list(y))
    mx, my = sum(rx) / len(rx), sum(ry) / len(ry)
    cov = sum((a - mx) * (b - my) for a, b in zip(rx, ry))
    return cov / math.sqrt(sum((a - mx) ** 2 for a in rx) * sum((b - my) ** 2 for b in ry))


def test_spearman_matches_rank_reference_with_ties():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 5, 40).astype(float)  # many ties
    y = x + rng.normal(0, 2, 40)
    assert spearman(x, y) == pytest.approx(_spearman_reference(x, y), abs=1e-12)
    assert spearman([1, 2, 3], [30, 20, 10]) == pytest.approx(-1.0)


def test_spearman_rejects_bad_input():
    with pytest.raises(ValueError, match="same length"):
        spearman([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="constant"):
        spearman([1, 1, 1], [1, 2, 3])
    with pytest.raises(ValueError, match="finite"):
        spearman([1, float("nan"), 3], [1, 2, 3])
    with pytest.raises(ValueError, match="at least 2"):
        spearman([1], [1])


def _toy_encoder():
    """A deterministic 'encoder': a fixed random vector per word, summed."""
    table: dict[str, torch.Tensor] = {}
    gen = torch.Generator().manual_seed(0)

    def encode(sentences):
        out = []
        for s in sentences:
            vec = torch.zeros(8, dtype=torch.float64)
            for w in s.split():
                if w not in table:
                    table[w] = torch.randn(8, generator=gen, dtype=torch.float64)
                vec = vec + table[w]
            out.append(vec)
        return torch.stack(out)

    return encode


def _toy_task(seed, n, subsets):
    rng = np.random.default_rng(seed)
    words = [f"w{i}" for i in range(12)]
    rows = {"sentence1": [], "sentence2": [], "score": [], "subset": []}
    for k in range(n):
        rows["sentence1"].append(" ".join(rng.choice(words, 3)))
        rows["sentence2"].append(" ".join(rng.choice(words, 3)))
        rows["score"].append(float(rng.integers(0, 6)))
        rows["subset"].append(subsets[k % len(subsets)])
    return Dataset.from_dict(rows)


def test_evaluate_sts_all_mean_wmean_against_reference():
    encode = _toy_encoder()
    data = {"a": _toy_task(0, 30, ["x", "y", "y"]), "b": _toy_task(1, 12, ["only"])}
    tables = {agg: evaluate_sts(encode, data, aggregation=agg) for agg in ("all", "mean", "wmean")}

    def cosines(ds):
        a, b = encode(ds["sentence1"]), encode(ds["sentence2"])
        return [float(F.cosine_similarity(a[i], b[i], dim=0)) for i in range(len(ds))]

    ds = data["a"]
    cos, gold, sub = cosines(ds), ds["score"], ds["subset"]
    per = {}
    for name in ("x", "y"):
        idx = [i for i in range(len(ds)) if sub[i] == name]
        per[name] = (_spearman_reference([cos[i] for i in idx], [gold[i] for i in idx]), len(idx))
    expected = {
        "all": _spearman_reference(cos, gold),
        "mean": (per["x"][0] + per["y"][0]) / 2,
        "wmean": (per["x"][0] * per["x"][1] + per["y"][0] * per["y"][1]) / (per["x"][1] + per["y"][1]),
    }
    b_expected = _spearman_reference(cosines(data["b"]), data["b"]["score"])
    for agg, table in tables.items():
        assert table.loc["a", "spearman"] == pytest.approx(100 * expected[agg], abs=1e-9)
        assert table.loc["b", "spearman"] == pytest.approx(100 * b_expected, abs=1e-9)  # one subset: all equal
        assert table.loc["avg", "spearman"] == pytest.approx((100 * expected[agg] + 100 * b_expected) / 2)
        assert table.loc["avg", "pairs"] == 42
    assert expected["all"] != pytest.approx(expected["mean"])  # the test can tell them apart


def test_sts_pairs_give_the_table_average_and_keep_tasks_apart():
    from contrastive_tutorial import stats
    from contrastive_tutorial.evaluate import sts_pairs

    encode = _toy_encoder()
    data = {"a": _toy_task(0, 30, ["x"]), "b": _toy_task(1, 12, ["only"])}
    cosines, labels = sts_pairs(encode, data)
    assert cosines.shape == (42,) and labels.shape == (42, 2) and set(labels[:, 1]) == {0.0, 1.0}
    assert list(labels[:30, 0]) == data["a"]["score"]
    a, b = encode(data["a"]["sentence1"]), encode(data["a"]["sentence2"])
    assert cosines[3] == pytest.approx(float(F.cosine_similarity(a[3], b[3], dim=0)), abs=1e-9)
    table = evaluate_sts(encode, data)
    assert stats.sts_average(cosines, labels) == pytest.approx(table.loc["avg", "spearman"], abs=1e-9)
    many, _ = sts_pairs(lambda s: {"plain": encode(s), "again": encode(s)}, data)
    assert set(many) == {"plain", "again"}
    from contrastive_tutorial.evaluate import pairs_table

    rebuilt = pairs_table(cosines, labels, list(data))
    assert rebuilt.round(9).equals(table.round(9))  # the same table from one pass
    with pytest.raises(ValueError, match="from sts_pairs"):
        pairs_table(cosines[:5], labels, list(data))


def test_evaluate_sts_scores_several_representations_from_one_pass():
    encode = _toy_encoder()
    data = {"a": _toy_task(0, 20, ["x"])}
    calls = []

    def both(sentences):
        calls.append(len(sentences))
        v = encode(sentences)
        return {"plain": v, "negated_half": torch.cat([v[:, :4], -v[:, 4:]], 1)}

    tables = evaluate_sts(both, data)
    assert set(tables) == {"plain", "negated_half"} and len(calls) == 1
    assert tables["plain"].loc["a", "spearman"] == pytest.approx(evaluate_sts(encode, data).loc["a", "spearman"])
    wide = sts_table(tables)
    assert list(wide.columns) == ["a", "avg"] and list(wide.index) == ["plain", "negated_half"]


def test_evaluate_sts_rejects_wrong_encoder_output_and_aggregation():
    data = {"a": _toy_task(0, 10, ["x"])}
    with pytest.raises(ValueError, match="one row per sentence"):
        evaluate_sts(lambda s: torch.zeros(len(s) + 1, 4), data)
    with pytest.raises(ValueError, match="aggregation"):
        evaluate_sts(_toy_encoder(), data, aggregation="median")


def test_evaluate_sts_on_the_offline_sets(shared_data_dir):
    from contrastive_tutorial.evaluate import sts_tasks

    with pytest.warns(UserWarning, match="MSRvid"):
        data = sts_tasks(["sts12", "sts13"], max_pairs=50, seed=3)
    assert [len(ds) for ds in data.values()] == [50, 50]
    again = sts_tasks(["sts13"], max_pairs=50, seed=3)["sts13"]
    assert again["sentence1"] == data["sts13"]["sentence1"]  # the sample is fixed by the seed
    table = evaluate_sts(_toy_encoder(), data)
    assert list(table.index) == ["sts12", "sts13", "avg"]


def test_mean_cosine_matches_pairwise_loop():
    x = torch.randn(7, 5, dtype=torch.float64)
    pairs = [float(F.cosine_similarity(x[i], x[j], dim=0)) for i in range(7) for j in range(7) if i != j]
    assert mean_cosine(x) == pytest.approx(sum(pairs) / len(pairs), abs=1e-12)
    assert mean_cosine(torch.ones(4, 3)) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="N >= 2"):
        mean_cosine(torch.ones(1, 3))


# ----------------------------------------------------------------- SimCSE losses
def _simcse_reference(z1, z2, tau, hard=None, exclude=None):
    n = len(z1)
    total = 0.0
    for i in range(n):
        keys = [(j, z2[j]) for j in range(n) if exclude is None or j == i or not exclude[i][j]]
        if hard is not None:
            keys += [(None, hard[j]) for j in range(n)]
        denom = sum(math.exp(float(F.cosine_similarity(z1[i], k, dim=0)) / tau) for _, k in keys)
        total += -math.log(math.exp(float(F.cosine_similarity(z1[i], z2[i], dim=0)) / tau) / denom)
    return total / n


def test_simcse_loss_with_excluded_duplicates_matches_reference():
    torch.manual_seed(0)
    z1, z2, h = (torch.randn(5, 4, dtype=torch.float64) for _ in range(3))
    batch = ["a", "b", "a", "c", "b"]
    mask = simcse.duplicate_mask(batch)
    assert mask.tolist()[0] == [False, False, True, False, False]
    assert not mask.diagonal().any() and (mask == mask.T).all()
    for hard in (None, h):
        got = L.simcse_loss(z1, z2, 0.1, hard, exclude=mask).item()
        assert got == pytest.approx(_simcse_reference(z1, z2, 0.1, hard, mask.tolist()), rel=1e-10)
        assert got < L.simcse_loss(z1, z2, 0.1, hard).item()  # fewer negatives, smaller loss
    with pytest.raises(ValueError, match="exclude"):
        L.simcse_loss(z1, z2, exclude=torch.zeros(4, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="positive"):
        L.simcse_loss(z1, z2, exclude=torch.eye(5, dtype=torch.bool))


def test_contrastive_tension_loss_matches_reference():
    torch.manual_seed(0)
    a, b = torch.randn(6, 3, dtype=torch.float64), torch.randn(6, 3, dtype=torch.float64)
    y = torch.tensor([1, 0, 0, 1, 0, 0])
    expected = 0.0
    for k in range(6):
        p = 1 / (1 + math.exp(-float(a[k] @ b[k])))
        expected += -(math.log(p) if y[k] else math.log(1 - p))
    assert L.contrastive_tension_loss(a, b, y).item() == pytest.approx(expected / 6, rel=1e-12)
    with pytest.raises(ValueError, match="0 or 1"):
        L.contrastive_tension_loss(a, b, torch.full((6,), 2))
    with pytest.raises(ValueError, match="labels must have shape"):
        L.contrastive_tension_loss(a, b, y[:3])


# ----------------------------------------------------------------- training
def test_unsup_simcse_views_differ_only_by_dropout(tiny):
    tiny.train()
    torch.manual_seed(0)
    loss = simcse.unsup_loss(tiny, SENTENCES, 0.05)
    assert loss.item() > 0 and loss.requires_grad
    tiny.eval()  # no dropout: identical views, and the loss is InfoNCE with identical positives
    batch = tiny.tokenize(SENTENCES)
    z = tiny(batch)
    assert simcse.unsup_loss(tiny, SENTENCES, 0.05).item() == pytest.approx(L.simcse_loss(z, z, 0.05).item(), rel=1e-5)


def test_train_simcse_runs_each_data_kind_and_keeps_best(tiny):
    sentences = [f"sentence number {i} about topic {i % 3}" for i in range(12)]
    dev = simcse.sts_dev_evaluator(sentences[:6], sentences[6:], [0, 1, 2, 3, 4, 5], pooler="mean")
    history = simcse.train_simcse(tiny, sentences, batch_size=4, lr=1e-3, epochs=2, max_steps=4, evaluate=dev,
                                  eval_every=2, progress=False)
    assert history["step"] == [0, 2, 3, 4] and all(math.isfinite(v) for v in history["loss"][1:])
    assert {"dev_spearman", "alignment", "uniformity"} <= set(history[0])
    triples = {"anchor": sentences[:8], "positive": sentences[1:9], "negative": sentences[2:10]}
    h2 = simcse.train_simcse(tiny, triples, batch_size=4, epochs=2, progress=False)
    assert h2["step"] == [2, 4]
    pairs = {"anchor": sentences[:8], "positive": sentences[1:9]}
    assert simcse.train_simcse(tiny, pairs, batch_size=4, max_steps=1, progress=False)[-1]["step"] == 1
    with pytest.raises(ValueError, match="larger than the data"):
        simcse.train_simcse(tiny, sentences[:3], batch_size=4, progress=False)
    with pytest.raises(ValueError, match="anchor"):
        simcse.train_simcse(tiny, {"premise": sentences}, batch_size=4, progress=False)
    with pytest.raises(ValueError, match="same length"):
        simcse.train_simcse(tiny, {"anchor": sentences, "positive": sentences[:5]}, batch_size=4, progress=False)


def test_sts_dev_evaluator_matches_direct_computation(tiny):
    s1, s2 = SENTENCES, SENTENCES[::-1]
    scores = [5.0, 1.0, 1.0, 4.5]
    metrics = simcse.sts_dev_evaluator(s1, s2, scores, pooler="mean", positive_threshold=4.0)(tiny)
    a = F.normalize(tiny.encode(s1, pooler="mean").double(), dim=1)
    b = F.normalize(tiny.encode(s2, pooler="mean").double(), dim=1)
    assert metrics["dev_spearman"] == pytest.approx(100 * _spearman_reference((a * b).sum(1).tolist(), scores))
    pos = [0, 3]
    assert metrics["alignment"] == pytest.approx(float(((a[pos] - b[pos]) ** 2).sum(1).mean()))


# ----------------------------------------------------------------- DeCLUTR and CT
def test_declutr_spans_follow_the_sampling_rules():
    rng = np.random.default_rng(0)
    anchor_lengths, positive_lengths = [], []
    for _ in range(3000):
        (a0, a1), (p0, p1) = simcse.declutr_spans(100, 8, 32, rng)
        assert 0 <= a0 < a1 <= 100 and 0 <= p0 < p1 <= 100
        assert 8 <= a1 - a0 <= 32 and 8 <= p1 - p0 <= 32
        assert p1 >= a0 and p0 <= a1  # overlapping, adjacent or inside: never apart
        anchor_lengths.append(a1 - a0)
        positive_lengths.append(p1 - p0)
    # E[Beta(4,2)] = 2/3, E[Beta(2,4)] = 1/3; floor costs about half a word
    assert np.mean(anchor_lengths) == pytest.approx(8 + 24 * 2 / 3 - 0.5, abs=0.5)
    assert np.mean(positive_lengths) == pytest.approx(8 + 24 / 3 - 0.5, abs=0.5)
    with pytest.raises(ValueError, match="at least max_length"):
        simcse.declutr_spans(10, 8, 32, rng)
    with pytest.raises(ValueError, match="min_length"):
        simcse.declutr_spans(100, 0, 32, rng)


def test_declutr_pairs_are_spans_of_their_document():
    docs = [" ".join(f"d{d}w{i}" for i in range(60)) for d in range(3)] + ["too short"]
    pairs = simcse.declutr_pairs(docs, 5, 20, pairs_per_document=2, seed=1)
    assert len(pairs["anchor"]) == 6
    for k, (anchor, positive) in enumerate(zip(pairs["anchor"], pairs["positive"])):
        doc = docs[k // 2]
        assert anchor in doc and positive in doc
    with pytest.raises(ValueError, match="no document"):
        simcse.declutr_pairs(["short text"], 5, 20)


def test_contrastive_tension_batches_and_training(tiny):
    sentences = [f"s{i} text" for i in range(32)]
    first, second, labels = next(iter(simcse.contrastive_tension_batches(sentences, 16, 7, seed=0)()))
    assert labels.tolist() == ([1.0] + [0.0] * 7) * 2
    for f, s, y in zip(first, second, labels):
        assert (f == s) == bool(y)
    with pytest.raises(ValueError, match="multiple"):
        simcse.contrastive_tension_batches(sentences, 10, 7)
    before = {k: v.clone() for k, v in tiny.state_dict().items()}
    history = simcse.train_contrastive_tension(tiny, sentences, batch_size=16, lr=1e-3, max_steps=2, progress=False)
    assert history[-1]["step"] == 2 and math.isfinite(history[-1]["loss"])
    assert any(not torch.equal(before[k], v) for k, v in tiny.state_dict().items())  # trained in place


def test_nli_triples_from_sick_fixture(tmp_path, monkeypatch):
    from contrastive_tutorial import data

    sick = tmp_path / "sts" / "sick"
    sick.mkdir(parents=True)
    rows = [
        ("1", "P one", "H one", "4.5", "ENTAILMENT"),
        ("2", "P one", "H two", "4.0", "ENTAILMENT"),
        ("3", "C one", "P one", "1.0", "CONTRADICTION"),  # contradiction in the other direction
        ("4", "P two", "H three", "4.0", "ENTAILMENT"),  # no contradiction: left out
        ("5", "P one", "N", "3.0", "NEUTRAL"),
    ]
    header = "pair_ID\tsentence_A\tsentence_B\trelatedness_score\tentailment_judgment\n"
    (sick / "SICK_train.txt").write_text(header + "".join("\t".join(r) + "\n" for r in rows))
    monkeypatch.setenv("CT_DATA_DIR", str(tmp_path))
    triples = data.load_nli_triples("sick")
    assert triples.to_dict() == {"anchor": ["P one", "P one"], "positive": ["H one", "H two"], "negative": ["C one"] * 2}
    with pytest.raises(ValueError, match="all-nli"):
        data.load_nli_triples("snli")
    with pytest.raises(data.SourceUnavailableError, match="local copy"):
        data.load_nli_triples("nli-for-simcse", source="local")


def test_simcse_speed_benchmark_smoke():
    """The benchmark script runs on CPU with a tiny model and prints its ratio."""
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "simcse_speed.py"
    out = subprocess.run([sys.executable, str(script), "--smoke", "--check"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "check, dropout off" in out.stdout and "ratio plain / fast:" in out.stdout


def test_encoders_refuse_one_string_where_a_list_is_meant(tiny):
    with pytest.raises(TypeError, match="not one string"):
        tiny.encode("hello")
    with pytest.raises(TypeError, match="list of pooler names"):
        tiny.encode_poolers(["a b"], poolers="mean")
    with pytest.raises(ValueError, match="empty"):
        tiny.encode([])


def test_text_encoder_refuses_lengths_the_model_cannot_take(tiny_encoder_parts):
    tokenizer, model = tiny_encoder_parts
    with pytest.raises(ValueError, match="integer >= 2"):
        TextEncoder(model, tokenizer, max_length="32")
    with pytest.raises(ValueError, match="exceeds the model's 64 positions"):
        TextEncoder(model, tokenizer, max_length=65)



def test_set_dropout_sets_every_layer_and_zero_makes_the_views_equal(tiny):
    """SimCSE's 'no dropout' row: with p = 0 two training-mode passes agree; bad rates are refused."""
    from contrastive_tutorial.encoders import set_dropout

    layers = [m for m in tiny.modules() if isinstance(m, torch.nn.Dropout)]
    sentences = ["A cat sits on the mat.", "Rain."]
    tiny.train()
    torch.manual_seed(0)
    assert not torch.allclose(tiny(sentences), tiny(sentences))  # dropout on: two different views
    assert set_dropout(tiny, 0.0) == len(layers) > 0
    assert all(m.p == 0.0 for m in layers)
    torch.testing.assert_close(tiny(sentences), tiny(sentences))
    assert set_dropout(tiny, 0.3) == len(layers) and all(m.p == 0.3 for m in layers)
    for bad in (1.0, -0.1, True, "0.1"):
        with pytest.raises(ValueError, match="p must be a dropout rate"):
            set_dropout(tiny, bad)
    with pytest.raises(ValueError, match="no nn.Dropout"):
        set_dropout(torch.nn.Linear(2, 2), 0.1)
    set_dropout(tiny, 0.1)
