"""The raw encoder's recipe (contrastive_tutorial.pretrain) and the model the package ships from it."""

from __future__ import annotations

import gzip
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch

import contrastive_tutorial as ct
from contrastive_tutorial import pretrain
from contrastive_tutorial.data import SourceUnavailableError

SPECIAL = (0, 1, 2, 3, 4)
DATA = Path(os.environ.get("CT_DATA_DIR", "/nonexistent"))
CORPUS = DATA / "corpus" / "en" / "train_10M.txt.gz"
SHIPPED = Path(ct.encoders.resolve_model_id(ct.RAW_MODEL))


def _lines(n: int) -> list[str]:
    """The first ``n`` lines of the real corpus (blank lines between documents kept)."""
    with gzip.open(CORPUS, "rt", encoding="utf-8") as f:
        return [next(f).rstrip("\n") for _ in range(n)]


def _corpus(tmp_path: Path, monkeypatch, lines: list[str], name: str = "tiny") -> str:
    folder = tmp_path / "data" / "corpus" / name
    folder.mkdir(parents=True)
    (folder / "part.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    monkeypatch.setenv("CT_DATA_DIR", str(tmp_path / "data"))
    return name


# --------------------------------------------------------------------------- masking
def test_mask_tokens_follows_berts_80_10_10_rule() -> None:
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, 1000, (400, 500), generator=g)
    ids[:, 0], ids[:, -1] = 2, 3  # [CLS] ... [SEP]
    inputs, labels = pretrain.mask_tokens(ids, mask_rate=0.15, mask_id=4, vocab_size=1000, special_ids=SPECIAL,
                                          generator=g)
    chosen = labels != -100
    assert not chosen[:, 0].any() and not chosen[:, -1].any()  # special tokens are never chosen
    assert torch.equal(labels[chosen], ids[chosen]) and torch.equal(inputs[~chosen], ids[~chosen])
    rate = chosen[:, 1:-1].float().mean().item()
    assert abs(rate - 0.15) < 0.003
    masked = (inputs[chosen] == 4).float().mean().item()
    changed = ((inputs[chosen] != 4) & (inputs[chosen] != ids[chosen])).float().mean().item()
    assert abs(masked - 0.8) < 0.01 and abs(changed - 0.1 * 994 / 995) < 0.01  # a random token may be itself
    assert not torch.isin(inputs[chosen & (inputs != 4)], torch.tensor(SPECIAL)).any()


def test_mask_tokens_is_reproducible_from_its_generator() -> None:
    ids = torch.randint(5, 50, (8, 16), generator=torch.Generator().manual_seed(1))
    runs = [pretrain.mask_tokens(ids, mask_rate=0.3, mask_id=4, vocab_size=50, special_ids=SPECIAL,
                                 generator=torch.Generator().manual_seed(7)) for _ in range(2)]
    assert all(torch.equal(a, b) for a, b in zip(*runs))


@pytest.mark.parametrize("rate", [0.0, 1.0, -0.1, 1.5])
def test_mask_rate_outside_the_open_interval_is_refused(rate: float) -> None:
    with pytest.raises(ValueError, match=r"mask_rate must be in \(0, 1\)"):
        pretrain.mask_tokens(torch.zeros(2, 4, dtype=torch.long), mask_rate=rate, mask_id=4, vocab_size=10,
                             special_ids=SPECIAL)
    with pytest.raises(ValueError, match="mask_rate"):
        pretrain.settings("quick", mask_rate=rate)


# --------------------------------------------------------------------------- the loss
def _tiny_mlm(vocab: int = 60):
    from transformers import BertConfig, BertForMaskedLM

    torch.manual_seed(0)
    return BertForMaskedLM(BertConfig(vocab_size=vocab, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                      intermediate_size=32, max_position_embeddings=16,
                                      hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0))


def test_masked_lm_loss_is_the_cross_entropy_at_the_masked_positions() -> None:
    """Against a float64 loop over the masked positions of the full logits, and transformers' own MLM loss."""
    model = _tiny_mlm()
    ids = torch.randint(5, 60, (3, 10), generator=torch.Generator().manual_seed(2))
    inputs, labels = pretrain.mask_tokens(ids, mask_rate=0.4, mask_id=4, vocab_size=60, special_ids=SPECIAL,
                                          generator=torch.Generator().manual_seed(3))
    assert (labels != -100).sum() >= 3
    ours = pretrain.MaskedLM(model).loss(inputs, labels)
    logits = model(input_ids=inputs).logits.double()
    terms = []
    for b in range(labels.shape[0]):
        for t in range(labels.shape[1]):
            if labels[b, t] != -100:
                row = logits[b, t]
                terms.append(-(row[labels[b, t]] - torch.logsumexp(row, 0)))
    reference = torch.stack(terms).mean()
    assert ours.item() == pytest.approx(reference.item(), abs=1e-5)
    assert ours.item() == pytest.approx(model(input_ids=inputs, labels=labels).loss.item(), abs=1e-5)
    # the same gradients as the loss over all positions' logits
    ours.backward()
    mine = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    model(input_ids=inputs, labels=labels).loss.backward()
    for a, p in zip(mine, model.parameters()):
        torch.testing.assert_close(a, p.grad, atol=1e-6, rtol=1e-4)


# --------------------------------------------------------------------------- corpus and tokenizer
def test_read_corpus_splits_documents_at_blank_lines(tmp_path: Path, monkeypatch) -> None:
    name = _corpus(tmp_path, monkeypatch, ["one two three.", "four five.", "", "", "six seven eight nine.", ""])
    assert pretrain.read_corpus(name) == [["one two three.", "four five."], ["six seven eight nine."]]
    assert pretrain.read_corpus(name, max_words=3) == [["one two three.", "four five."]]


def test_a_missing_empty_or_undecodable_corpus_is_named(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("CT_DATA_DIR", str(tmp_path))
    with pytest.raises(SourceUnavailableError, match="no folder"):
        pretrain.read_corpus("en")
    (tmp_path / "corpus" / "en").mkdir(parents=True)
    with pytest.raises(SourceUnavailableError, match="holds no .txt"):
        pretrain.read_corpus("en")
    (tmp_path / "corpus" / "en" / "a.txt").write_text("\n\n")
    with pytest.raises(ValueError, match="holds no text"):
        pretrain.read_corpus("en")
    (tmp_path / "corpus" / "en" / "a.txt").write_bytes("caf\u00e9 au lait.\n".encode("latin-1"))
    with pytest.raises(ValueError, match="is not UTF-8"):
        pretrain.read_corpus("en")
    monkeypatch.delenv("CT_DATA_DIR")
    with pytest.raises(SourceUnavailableError, match="set CT_DATA_DIR"):
        pretrain.read_corpus("en")


def test_the_tokenizer_is_uncased_wordpiece_with_berts_specials() -> None:
    text = ["The cat sat on the mat.", "A dog barked at the cat!", "Cats and dogs."] * 20
    tok = pretrain.train_tokenizer(text, vocab_size=120)
    assert [tok.convert_tokens_to_ids(t) for t in pretrain.SPECIAL_TOKENS] == list(SPECIAL)
    assert tok("The CAT")["input_ids"] == tok("the cat")["input_ids"]
    ids = tok("the cat sat")["input_ids"]
    assert ids[0] == tok.cls_token_id and ids[-1] == tok.sep_token_id and len(tok) <= 120
    assert tok.decode(tok("the cats barked")["input_ids"], skip_special_tokens=True) == "the cats barked"
    with pytest.raises(ValueError, match="special tokens"):
        pretrain.train_tokenizer(text, vocab_size=5)


def test_token_blocks_frame_the_documents_stream() -> None:
    docs = [["the cat sat on the mat."], ["a dog barked.", "the cat ran."]]
    tok = pretrain.train_tokenizer([p for d in docs for p in d] * 5, vocab_size=80)
    blocks = pretrain.token_blocks(tok, docs, max_length=6)
    stream = [i for d in docs for i in [*sum((tok(p, add_special_tokens=False)["input_ids"] for p in d), []),
                                        tok.sep_token_id]]
    assert blocks.shape == (len(stream) // 4, 6)
    assert (blocks[:, 0] == tok.cls_token_id).all() and (blocks[:, -1] == tok.sep_token_id).all()
    assert blocks[:, 1:-1].reshape(-1).tolist() == stream[: blocks.shape[0] * 4]
    with pytest.raises(ValueError, match="at least 3"):
        pretrain.token_blocks(tok, docs, max_length=2)


def test_settings_refuse_what_cannot_train() -> None:
    with pytest.raises(ValueError, match="vocab_size must exceed"):
        pretrain.settings("quick", vocab_size=4)
    with pytest.raises(ValueError, match="multiple of heads"):
        pretrain.settings("quick", hidden_size=100, heads=3)
    with pytest.raises(ValueError, match="unknown pretraining settings"):
        pretrain.settings("quick", hidden=128)
    with pytest.raises(ValueError, match="max_length must be"):
        pretrain.settings("quick", max_length=2)
    with pytest.raises(ValueError, match="profile must be one of"):
        pretrain.settings("huge")
    with pytest.raises(ValueError, match=r"architecture must be one of \['bert', 'roformer'\], got 'gpt'"):
        pretrain.settings("quick", architecture="gpt")


# --------------------------------------------------------------------------- a smoke-sized run
TINY = dict(vocab_size=200, hidden_size=32, layers=1, heads=2, intermediate_size=64, max_length=32, batch_size=8,
            steps=6, warmup_steps=2, eval_every=3, heldout_documents=3, amp=False)


@pytest.mark.skipif(not CORPUS.exists(), reason="needs the shared data folder's corpus (CT_DATA_DIR)")
@pytest.mark.parametrize("architecture", pretrain.ARCHITECTURES)
def test_a_smoke_sized_pretraining_run_learns_and_reproduces(tmp_path: Path, monkeypatch, architecture: str) -> None:
    name = _corpus(tmp_path, monkeypatch, _lines(400))
    s = pretrain.settings("quick", corpus=name, architecture=architecture, **TINY)
    model, tok, report = pretrain.pretrain(s, tmp_path / "a", progress=False)
    again, _, _ = pretrain.pretrain(s, tmp_path / "b", progress=False)
    for (k, a), b in zip(model.state_dict().items(), again.state_dict().values()):
        assert torch.equal(a, b), k  # the same command, the same weights
    curve = report["curve"]
    assert [r["step"] for r in curve] == [0, 3, 6] and curve[-1]["heldout_loss"] < curve[0]["heldout_loss"]
    assert json.loads((tmp_path / "a" / "report.json").read_text())["heldout_loss"] == report["heldout_loss"]
    folder = pretrain.export(model, tok, tmp_path / "model")
    from transformers import AutoModelForMaskedLM

    loaded = AutoModelForMaskedLM.from_pretrained(folder)
    assert next(loaded.parameters()).dtype == torch.float32
    assert loaded.config.model_type == architecture
    from transformers import AutoTokenizer

    assert AutoTokenizer.from_pretrained(folder).model_max_length == s.max_length  # the position embeddings' limit
    assert (folder / "model.safetensors").stat().st_size < 0.6 * sum(p.numel() * 4 for p in model.parameters())


# --------------------------------------------------------------------------- the shipped model
def _card() -> dict:
    return json.loads((SHIPPED / "card.json").read_text())


def test_the_shipped_model_loads_offline_through_every_path(monkeypatch) -> None:
    from transformers import AutoModel, AutoModelForMaskedLM

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert SHIPPED.is_dir() and SHIPPED.parent.parent == Path(ct.__file__).parent
    assert (SHIPPED / "model.safetensors").stat().st_size < 15e6
    for cls in (AutoModel, AutoModelForMaskedLM):
        assert next(cls.from_pretrained(SHIPPED).parameters()).dtype == torch.float32
    sentences = ["a man is playing a guitar.", "the cat sat on the mat."]
    for pooler in ct.encoders.POOLERS:
        encoder = ct.encoders.TextEncoder.from_pretrained(ct.RAW_MODEL, pooler=pooler)
        vectors = encoder.encode(sentences)
        assert vectors.shape == (2, _card()["settings"]["hidden_size"]) and torch.isfinite(vectors).all()
    positions = _card()["settings"]["max_length"]
    with pytest.raises(ValueError, match=f"exceeds the model's {positions} positions"):
        ct.encoders.TextEncoder.from_pretrained(ct.RAW_MODEL, max_length=200)


def test_the_shipped_model_fills_in_masks_through_promptberts_loader() -> None:
    from contrastive_tutorial.methods.promptbert import load_mlm

    tok, mlm = load_mlm(ct.RAW_MODEL)
    batch = tok(["the capital of france is [MASK]."], return_tensors="pt")
    with torch.inference_mode():
        logits = mlm(**batch).logits[0, batch["input_ids"][0].tolist().index(tok.mask_token_id)]
    top = tok.convert_ids_to_tokens(logits.topk(10).indices.tolist())
    assert len(top) == 10 and "[MASK]" not in top


def test_the_cards_weights_are_the_shipped_weights() -> None:
    card = _card()
    assert pretrain.fingerprint(SHIPPED) == card["sha256"]
    text = (SHIPPED / "README.md").read_text()
    assert card["sha256"] in text and f"{card['heldout_loss']:.4f}" in text and "CC BY-SA 3.0" in text


@pytest.mark.skipif(not CORPUS.exists(), reason="needs the shared data folder's corpus (CT_DATA_DIR)")
def test_the_cards_heldout_loss_is_recomputed_from_the_shipped_weights() -> None:
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    card = _card()
    s = pretrain.PretrainSettings(**card["settings"])
    tok = AutoTokenizer.from_pretrained(SHIPPED)
    loss = pretrain.heldout_loss(AutoModelForMaskedLM.from_pretrained(SHIPPED), tok,
                                 pretrain.heldout_blocks(tok, s, card["card_blocks"]), s.mask_rate)
    assert loss == pytest.approx(card["heldout_loss"], abs=1e-4)
    assert math.exp(loss) < 0.1 * len(tok)  # far better than guessing among the vocabulary


def test_the_shipped_model_round_trips_into_sentence_transformers(tmp_path: Path) -> None:
    from sentence_transformers import SentenceTransformer

    encoder = ct.encoders.TextEncoder.from_pretrained(ct.RAW_MODEL, pooler="mean")
    sentences = ["a man is playing a guitar.", "two dogs run on the beach.", "a woman slices an onion."]
    path = encoder.save(tmp_path / "raw")
    theirs = SentenceTransformer(str(path), device="cpu").encode(sentences, convert_to_tensor=True)
    torch.testing.assert_close(theirs.cpu(), encoder.encode(sentences), atol=1e-5, rtol=1e-4)


# --------------------------------------------------------------------------- decontamination
def test_shared_sentences_finds_an_evaluation_sentence_in_a_paragraph() -> None:
    docs = [["It rained. A man is playing a large flute! Then it stopped."]]
    assert pretrain.shared_sentences(["A man is playing a LARGE flute.", "A dog runs."], docs) == {
        "a man is playing a large flute"}
    assert pretrain.shared_sentences(["A man is playing a guitar."], docs) == set()


@pytest.mark.skipif(not CORPUS.exists(), reason="needs the shared data folder's corpus (CT_DATA_DIR)")
def test_no_evaluation_sentence_is_in_the_pretraining_corpus() -> None:
    """Every STS and SICK sentence the package loads offline, and the short-text sets' texts (SCCL's
    clustering and the quick transfer task), hashed against the corpus's paragraphs and sentences."""
    from contrastive_tutorial.data import load_short_text_clustering, load_sts
    from contrastive_tutorial.evaluate import sts_tasks

    sentences = []
    for task, ds in sts_tasks(("sts12", "sts13", "sts14")).items():
        sentences += list(ds["sentence1"]) + list(ds["sentence2"])
    for split in ("train", "validation"):
        ds = load_sts("sickr", split=split)
        sentences += list(ds["sentence1"]) + list(ds["sentence2"])
    assert len(sentences) > 15000
    short = [t for f in sorted((DATA / "short_text_clustering").glob("*.tsv"))
             for t in load_short_text_clustering(f.stem)["text"]]
    found = pretrain.shared_sentences(sentences + short, pretrain.read_corpus("en"))
    assert not found, f"{len(found)} evaluation sentences are in the corpus, e.g. {sorted(found)[:3]}"
