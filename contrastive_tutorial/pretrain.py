"""The book's own raw encoder: a small BERT-style encoder pretrained with masked language modelling.

Contrastive sentence encoders (SimCSE, PromptBERT, USCAL) start from a *raw* masked language
model, one that has only learnt to fill in words. No such model installs offline, so the book
trains one, once, with this recipe, and ships it inside the package
(:data:`contrastive_tutorial.RAW_MODEL`). The steps:

1. a WordPiece vocabulary trained on the corpus with the ``tokenizers`` library (uncased);
2. the corpus cut into blocks of ``max_length`` tokens, ``[CLS] ... [SEP]``, documents joined
   by ``[SEP]``;
3. BERT's masking (Devlin et al., 2019, section 3.1): each non-special token is chosen with
   probability ``mask_rate`` (15 %); a chosen token becomes ``[MASK]`` 80 % of the time, a
   random token 10 % and stays itself 10 %; the loss is the cross-entropy of the original
   token at the chosen positions only,

   .. math:: \\mathcal{L} = -\\frac{1}{|M|} \\sum_{i \\in M} \\log p_\\theta(x_i \\mid \\tilde x),

   and the output layer runs on those positions only (the other 85 % need no logits);
4. a BERT-style encoder from ``transformers``' config classes, trained by the book's one loop
   (:func:`~contrastive_tutorial.train.train`): AdamW, linear warm-up and decay, a
   checkpoint every few minutes from which a stopped run resumes, progress with an ETA.
   ``architecture="roformer"`` (the default) is BERT with rotary position embeddings
   (``RoFormerForMaskedLM``; Su et al., 2021): the same layers, but each attention score
   depends on the two tokens' distance instead of on learnt absolute positions.
   ``architecture="bert"`` is ``BertForMaskedLM``. On two CPU cores the difference decides
   whether pretraining works at all: BERT's held-out loss sat on a plateau near 6.2 nats
   (barely below the 6.9 of predicting word frequencies) for 3,000 steps, the rotary model
   left it within 700 steps (``benchmarks/RESULTS.md``).

``python -m contrastive_tutorial pretrain --profile quick --out DIR`` runs it; the appendix
"A raw encoder of our own" teaches it. Deterministic from the seed on one machine.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import checks
from .data import SourceUnavailableError, data_dir

__all__ = ["PretrainSettings", "SETTINGS", "read_corpus", "train_tokenizer", "token_blocks", "mask_tokens",
           "MaskedLM", "heldout_loss", "heldout_blocks", "shared_sentences", "pretrain", "export", "settings"]

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


@dataclass(frozen=True)
class PretrainSettings:
    """Everything that decides the pretrained weights (with the corpus file itself)."""

    corpus: str = "en"  # $CT_DATA_DIR/corpus/<corpus>/*.txt.gz, or the hub's WikiText-103 for "wikitext"
    max_words: int | None = None  # read the corpus up to this many words (None: all of it)
    heldout_documents: int = 200  # the corpus's last documents: the held-out slice, never trained on
    vocab_size: int = 8192
    tokenizer: str | None = None  # None: train one on the corpus; or a folder / model id whose tokenizer to reuse
    hidden_size: int = 256
    layers: int = 4
    heads: int = 4
    intermediate_size: int = 1024
    max_length: int = 64  # tokens per training block, [CLS] and [SEP] included; also the position limit
    dropout: float = 0.1  # BERT's; SimCSE's augmentation is this dropout
    mask_rate: float = 0.15
    batch_size: int = 64
    lr: float = 5e-4  # high for BERT-base, usual for small models (ELECTRA-small: 5e-4)
    weight_decay: float = 0.01
    warmup_steps: int = 1000
    steps: int = 7500  # about 55 minutes on two cores
    eval_every: int = 500
    amp: str | bool | None = "bf16"  # bf16 autocast (fast where the CPU has bf16 units; float32 weights)
    seed: int = 0
    architecture: str = "roformer"  # "roformer": BERT with rotary positions; "bert": learnt absolute positions


SETTINGS: dict[str, PretrainSettings] = {
    # what the package ships: about an hour on two CPU cores (see the model card)
    "quick": PretrainSettings(),
    # a GPU: the same model on blocks twice as long, with 16 times the tokens of the quick run
    "colab": PretrainSettings(max_length=128, batch_size=256, steps=30000, warmup_steps=1000, eval_every=2000),
    # a BERT-small-sized model on the whole public corpus (hub: WikiText-103)
    "full": PretrainSettings(corpus="wikitext", vocab_size=16384, hidden_size=512, layers=4, heads=8,
                             intermediate_size=2048, batch_size=256, steps=100000, warmup_steps=5000,
                             eval_every=5000),
}


def check_settings(s: PretrainSettings) -> None:
    """Refuse settings that cannot train, naming the setting and what it must be."""
    if not 0 < s.mask_rate < 1:
        raise ValueError(f"mask_rate must be in (0, 1), got {s.mask_rate!r}")
    if s.vocab_size <= len(SPECIAL_TOKENS) + 26:
        raise ValueError(f"vocab_size must exceed the {len(SPECIAL_TOKENS)} special tokens and the alphabet "
                         f"(at least {len(SPECIAL_TOKENS) + 27}), got {s.vocab_size}")
    if s.architecture not in ARCHITECTURES:
        raise ValueError(f"architecture must be one of {sorted(ARCHITECTURES)}, got {s.architecture!r}")
    if s.hidden_size % s.heads:
        raise ValueError(f"hidden_size ({s.hidden_size}) must be a multiple of heads ({s.heads})")
    for name in ("max_length", "batch_size", "steps", "warmup_steps", "eval_every", "layers", "heads"):
        checks.count(getattr(s, name), name, minimum={"max_length": 3, "warmup_steps": 0}.get(name, 1))


# --------------------------------------------------------------------------- corpus
def _corpus_files(name: str) -> list[Path]:
    root = data_dir()
    if root is None:
        raise SourceUnavailableError(f"corpus {name!r}: set CT_DATA_DIR to the shared data folder "
                                     f"(it holds corpus/{name}/*.txt.gz), or use corpus='wikitext' with a network")
    folder = root / "corpus" / name
    if not folder.is_dir():
        raise SourceUnavailableError(f"corpus {name!r}: no folder {folder}")
    files = sorted(folder.glob("*.txt.gz")) + sorted(folder.glob("*.txt"))
    if not files:
        raise SourceUnavailableError(f"corpus {name!r}: {folder} holds no .txt or .txt.gz file")
    return files


def _read_lines(path: Path) -> Iterator[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", errors="strict") as f:
        try:
            yield from f
        except UnicodeDecodeError as error:
            raise ValueError(f"corpus file {path} is not UTF-8 text ({error})") from error


def read_corpus(name: str = "en", max_words: int | None = None) -> list[list[str]]:
    """The corpus as documents, each a list of paragraphs (one per line; a blank line ends a document).

    ``name`` is a folder under ``$CT_DATA_DIR/corpus`` (the book's ``en``: 10 M words of
    Wikipedia, Wikinews and Project Gutenberg, see its README), or ``"wikitext"`` for
    WikiText-103 from the hub (a network is needed). Reading stops at the first document
    boundary after ``max_words`` words.
    """
    if name == "wikitext":
        from .data import load_dataset

        rows = (row["text"].strip() for row in load_dataset("Salesforce/wikitext", "wikitext-103-raw-v1", split="train"))
        # an article starts at its title line " = Title = "; section headings " = = ... = = " and blank lines are dropped
        lines = ("" if line.startswith("= ") and line.endswith(" =") else line
                 for line in rows if line and not line.startswith("= = "))
    else:
        lines = (line.strip() for path in _corpus_files(name) for line in _read_lines(path))
    documents, current, words = [], [], 0
    for line in lines:
        if line:
            current.append(line)
            words += line.count(" ") + 1
            continue
        if current:
            documents.append(current)
            current = []
            if max_words is not None and words >= max_words:
                break
    if current:
        documents.append(current)
    if not documents:
        raise ValueError(f"corpus {name!r} holds no text")
    return documents


_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_NOT_WORD = re.compile(r"[^0-9a-z]+")


def _normal(text: str) -> str:
    return _NOT_WORD.sub(" ", text.lower()).strip()


def shared_sentences(evaluation: Iterable[str], documents: Iterable[Sequence[str]], min_words: int = 4) -> set[str]:
    """The evaluation sentences (of at least ``min_words`` words) that occur in the corpus, as a
    whole paragraph or as one of its sentences, after lower-casing and keeping letters and digits
    only. An empty set is what a decontaminated corpus gives."""
    wanted = {n for n in map(_normal, evaluation) if len(n.split()) >= min_words}
    found = set()
    for doc in documents:
        for paragraph in doc:
            for piece in (paragraph, *_SENTENCE.split(paragraph)):
                n = _normal(piece)
                if n in wanted:
                    found.add(n)
    return found


# --------------------------------------------------------------------------- tokenizer
def train_tokenizer(paragraphs: Sequence[str], vocab_size: int):
    """An uncased WordPiece tokenizer trained on ``paragraphs``, as a ``transformers`` BERT tokenizer.

    BERT's normaliser (lower case, accents stripped) and pre-tokeniser (whitespace and
    punctuation), WordPiece with ``##`` continuation pieces, and the template
    ``[CLS] A [SEP]`` / ``[CLS] A [SEP] B [SEP]``.
    """
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertTokenizerFast

    if vocab_size <= len(SPECIAL_TOKENS):
        raise ValueError(f"vocab_size must exceed the {len(SPECIAL_TOKENS)} special tokens, got {vocab_size}")
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]", max_input_chars_per_word=100))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True, strip_accents=True, clean_text=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece(prefix="##")
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS),
                                        min_frequency=2, continuing_subword_prefix="##", show_progress=False)
    tok.train_from_iterator(paragraphs, trainer=trainer, length=len(paragraphs))
    # the trainer numbers pieces of equal frequency in hash order, which changes from run to run:
    # renumber them (specials first, then by piece) so that the same text gives the same ids
    learnt = sorted(set(tok.get_vocab()) - set(SPECIAL_TOKENS))
    tok.model = models.WordPiece({t: i for i, t in enumerate([*SPECIAL_TOKENS, *learnt])}, unk_token="[UNK]",
                                 max_input_chars_per_word=100, continuing_subword_prefix="##")
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    return BertTokenizerFast(tokenizer_object=tok, do_lower_case=True, unk_token="[UNK]", sep_token="[SEP]",
                             pad_token="[PAD]", cls_token="[CLS]", mask_token="[MASK]")


def token_blocks(tokenizer, documents: Sequence[Sequence[str]], max_length: int) -> np.ndarray:
    """``(n_blocks, max_length)`` token ids: the documents' tokens in order, a ``[SEP]`` after
    each document, cut into pieces of ``max_length - 2`` framed by ``[CLS]`` and ``[SEP]``
    (the ragged end is dropped). Every block is full: no padding, no attention mask needed."""
    if max_length < 3:
        raise ValueError(f"max_length must be at least 3 ([CLS], a token, [SEP]), got {max_length}")
    paragraphs = [p for doc in documents for p in doc]
    ids = tokenizer(paragraphs, add_special_tokens=False)["input_ids"]
    sep, cls = tokenizer.sep_token_id, tokenizer.cls_token_id
    stream, i = [], 0
    for doc in documents:
        for _ in doc:
            stream.extend(ids[i])
            i += 1
        stream.append(sep)
    width = max_length - 2
    n = len(stream) // width
    if n == 0:
        raise ValueError(f"the corpus has {len(stream)} tokens, fewer than one block of {width}")
    body = np.asarray(stream[: n * width], dtype=np.int32).reshape(n, width)
    return np.concatenate([np.full((n, 1), cls, np.int32), body, np.full((n, 1), sep, np.int32)], axis=1)


# --------------------------------------------------------------------------- masking
def mask_tokens(input_ids: Tensor, *, mask_rate: float, mask_id: int, vocab_size: int,
                special_ids: Sequence[int], generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """BERT's masking: ``(inputs, labels)`` with ``labels = -100`` where nothing is predicted.

    Each token that is not special is chosen with probability ``mask_rate``; a chosen token is
    replaced by ``mask_id`` with probability 0.8, by a uniformly random non-special token with
    probability 0.1, and left as it is with probability 0.1. ``labels`` holds the original id at
    the chosen positions. ``transformers.DataCollatorForLanguageModeling`` does the same.
    """
    if not 0 < mask_rate < 1:
        raise ValueError(f"mask_rate must be in (0, 1), got {mask_rate!r}")
    specials = set(special_ids)
    special = torch.isin(input_ids, torch.as_tensor(sorted(specials), dtype=input_ids.dtype))
    u = torch.rand(input_ids.shape, generator=generator)
    chosen = (u < mask_rate) & ~special
    action = torch.rand(input_ids.shape, generator=generator)  # < 0.8: [MASK]; 0.8-0.9: random; else kept
    ordinary = torch.tensor([i for i in range(vocab_size) if i not in specials], dtype=input_ids.dtype)
    random_ids = ordinary[torch.randint(len(ordinary), input_ids.shape, generator=generator)]
    inputs = torch.where(chosen & (action < 0.8), torch.full_like(input_ids, mask_id), input_ids)
    inputs = torch.where(chosen & (action >= 0.8) & (action < 0.9), random_ids, inputs)
    labels = torch.where(chosen, input_ids, torch.full_like(input_ids, -100))
    return inputs, labels


class MaskedLM(nn.Module):
    """The training method of :func:`~contrastive_tutorial.train.train`: ``loss(inputs, labels)``
    is the mean cross-entropy at the masked positions, with the MLM head run on those only."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def loss(self, inputs: Tensor, labels: Tensor) -> Tensor:
        inputs, labels = inputs.to(self.model.device), labels.to(self.model.device)
        hidden = self.model.base_model(input_ids=inputs).last_hidden_state
        where = labels != -100
        logits = self.model.cls(hidden[where])
        return F.cross_entropy(logits.float(), labels[where])


ARCHITECTURES = ("bert", "roformer")


def _config(s: PretrainSettings, tokenizer):
    """The encoder's configuration: ``BertConfig`` or ``RoFormerConfig`` (the same fields; RoFormer's
    positions are rotations of queries and keys, so ``max_position_embeddings`` holds no weights)."""
    from transformers import BertConfig, RoFormerConfig

    config = RoFormerConfig if s.architecture == "roformer" else BertConfig
    return config(vocab_size=len(tokenizer), hidden_size=s.hidden_size, num_hidden_layers=s.layers,
                      num_attention_heads=s.heads, intermediate_size=s.intermediate_size,
                      max_position_embeddings=s.max_length, hidden_dropout_prob=s.dropout,
                      attention_probs_dropout_prob=s.dropout, pad_token_id=tokenizer.pad_token_id,
                      type_vocab_size=2)


def _masker(tokenizer, mask_rate: float):
    special = tokenizer.all_special_ids
    return lambda ids, generator: mask_tokens(ids, mask_rate=mask_rate, mask_id=tokenizer.mask_token_id,
                                              vocab_size=len(tokenizer), special_ids=special, generator=generator)


@torch.inference_mode()
def heldout_loss(model: nn.Module, tokenizer, blocks: np.ndarray, mask_rate: float = 0.15, seed: int = 1234,
                 batch_size: int = 64) -> float:
    """Mean masked-token cross-entropy over ``blocks`` with a fixed masking (``seed``): the card's number."""
    from .train import eval_mode

    generator = torch.Generator().manual_seed(seed)
    mask = _masker(tokenizer, mask_rate)
    method = MaskedLM(model)
    total, count = 0.0, 0
    with eval_mode(model):
        for start in range(0, len(blocks), batch_size):
            inputs, labels = mask(torch.from_numpy(blocks[start : start + batch_size]).long(), generator)
            n = int((labels != -100).sum())
            total += float(method.loss(inputs, labels)) * n
            count += n
    return total / count


# --------------------------------------------------------------------------- the recipe
def _split(documents: list[list[str]], heldout: int) -> tuple[list[list[str]], list[list[str]]]:
    if not 0 < heldout < len(documents):
        raise ValueError(f"heldout_documents must be between 1 and {len(documents) - 1} "
                         f"(the corpus has {len(documents)} documents), got {heldout}")
    return documents[:-heldout], documents[-heldout:]


def prepare(s: PretrainSettings, out: Path):
    """Tokenizer and ``(train, heldout)`` blocks, cached in ``out`` (tokenizer/, blocks.npz)."""
    from transformers import AutoTokenizer

    out.mkdir(parents=True, exist_ok=True)
    cache, made_by = out / "blocks.npz", out / "blocks.json"
    what = {k: getattr(s, k) for k in ("corpus", "max_words", "heldout_documents", "vocab_size", "max_length", "tokenizer")}
    if (out / "tokenizer").is_dir() and cache.exists() and made_by.exists():
        if json.loads(made_by.read_text()) != what:
            raise ValueError(f"{out} holds a run with other corpus or tokenizer settings "
                             f"({made_by.read_text().strip()}); use another --out folder")
        tokenizer = AutoTokenizer.from_pretrained(out / "tokenizer")
        arrays = np.load(cache)
        return tokenizer, arrays["train"], arrays["heldout"]
    documents = read_corpus(s.corpus, s.max_words)
    train_docs, heldout_docs = _split(documents, s.heldout_documents)
    if s.tokenizer is None:
        tokenizer = train_tokenizer([p for doc in train_docs for p in doc], s.vocab_size)
    else:
        from .encoders import resolve_model_id

        tokenizer = AutoTokenizer.from_pretrained(resolve_model_id(s.tokenizer))
    train_blocks = token_blocks(tokenizer, train_docs, s.max_length)
    heldout_blocks = token_blocks(tokenizer, heldout_docs, s.max_length)
    tokenizer.save_pretrained(out / "tokenizer")
    np.savez(cache, train=train_blocks, heldout=heldout_blocks)
    made_by.write_text(json.dumps(what) + "\n")
    return tokenizer, train_blocks, heldout_blocks


def pretrain(s: PretrainSettings, out: str | os.PathLike, progress: bool | None = None):
    """Pretrain with settings ``s`` into the folder ``out`` and return ``(model, tokenizer, report)``.

    ``out`` keeps what a rerun reuses: the tokenizer and token blocks, the training
    checkpoint (a stopped run resumes from it; a finished one returns at once) and
    ``report.json`` (settings, steps, seconds, held-out loss, the loss curve).
    """
    from transformers import AutoModelForMaskedLM

    from .train import Batches, adam, linear_schedule, train

    check_settings(s)
    out = Path(out)
    tokenizer, train_blocks, heldout_blocks = prepare(s, out)
    torch.manual_seed(s.seed)
    model = AutoModelForMaskedLM.from_config(_config(s, tokenizer))
    method = MaskedLM(model)
    generator = torch.Generator().manual_seed(s.seed)
    mask = _masker(tokenizer, s.mask_rate)
    data = torch.from_numpy(train_blocks)
    batches = Batches(len(train_blocks), s.batch_size, generator=generator,
                      collate=lambda idx: mask(data[idx].long(), generator))
    probe = heldout_blocks[: 4 * 64]  # a fixed slice for the curve; the card's number uses all the held-out blocks

    def evaluate() -> dict[str, float]:
        return {"heldout_loss": heldout_loss(model, tokenizer, probe, s.mask_rate)}

    optimizer = adam(model.parameters(), lr=s.lr, weight_decay=s.weight_decay)
    history = train(method, batches, optimizer, steps=s.steps, scheduler=linear_schedule(optimizer, s.steps, s.warmup_steps),
                    amp=s.amp, clip_grad_norm=1.0, evaluate=evaluate, eval_every=s.eval_every,
                    checkpoint=out / "checkpoint.pt", progress=progress, desc="MLM steps")
    report = {"settings": asdict(s), "train_blocks": int(len(train_blocks)), "heldout_blocks": int(len(heldout_blocks)),
              "train_tokens_seen": int(s.steps * s.batch_size * s.max_length),
              "parameters": int(sum(p.numel() for p in model.parameters())),
              "training_seconds": float(sum(r["seconds"] for r in history)),
              "heldout_loss": heldout_loss(model, tokenizer, heldout_blocks, s.mask_rate),
              "curve": [{k: r[k] for k in ("step", "loss", "heldout_loss")} for r in history]}
    report["heldout_perplexity"] = math.exp(report["heldout_loss"])
    (out / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    return model, tokenizer, report


def export(model: nn.Module, tokenizer, folder: str | os.PathLike) -> Path:
    """Save ``model`` in float16 safetensors with its tokenizer: ``AutoModel`` and
    ``AutoModelForMaskedLM`` both load the folder (in float32, as the config says)."""
    import copy

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    half = copy.deepcopy(model).to(torch.float16)
    half.save_pretrained(folder, safe_serialization=True)
    config = json.loads((folder / "config.json").read_text())
    for key in ("torch_dtype", "dtype"):  # weights stored in fp16, loaded and run in fp32
        if key in config:
            config[key] = "float32"
    (folder / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    tokenizer.model_max_length = model.config.max_position_embeddings  # longer inputs are truncated, not an index error
    tokenizer.save_pretrained(folder)
    return folder


CARD_BLOCKS = 512  # the model card's held-out loss: the first blocks of the held-out documents


def heldout_blocks(tokenizer, s: PretrainSettings, n: int | None = CARD_BLOCKS) -> np.ndarray:
    """The first ``n`` blocks of the corpus's held-out documents (never trained on), tokenised by ``tokenizer``."""
    _, heldout = _split(read_corpus(s.corpus, s.max_words), s.heldout_documents)
    blocks = token_blocks(tokenizer, heldout, s.max_length)
    return blocks if n is None else blocks[:n]


def fingerprint(folder: str | os.PathLike) -> str:
    """SHA-256 of the weights file: the card names it, so weights and card cannot drift apart."""
    return hashlib.sha256((Path(folder) / "model.safetensors").read_bytes()).hexdigest()


def settings(profile: str = "quick", **overrides: Any) -> PretrainSettings:
    """The profile's settings with ``overrides`` (unknown names are refused)."""
    if profile not in SETTINGS:
        raise ValueError(f"profile must be one of {sorted(SETTINGS)}, got {profile!r}")
    known = set(PretrainSettings.__dataclass_fields__)
    unknown = set(overrides) - known
    if unknown:
        raise ValueError(f"unknown pretraining settings {sorted(unknown)}; known: {sorted(known)}")
    s = replace(SETTINGS[profile], **overrides)
    check_settings(s)
    return s
