"""Data sets of the book: one loader per data set, the same call in both profiles.

Each loader reads a local copy when one is there (``$CT_DATA_DIR``, or a pip package that
ships the data) and asks the Hugging Face hub otherwise; ``source="local"`` or
``source="hub"`` forces one. A source that cannot be had raises
:class:`SourceUnavailableError` saying what to set or install, never a silent substitute.

``$CT_DATA_DIR`` has the layout of the book's offline data folder::

    sts/semeval/<year>.<set>.test.tsv       score<TAB>sentence1<TAB>sentence2
    sts/sick/SICK_train.txt, SICK_trial.txt  SICK with relatedness and entailment
    short_text_clustering/<name>.tsv         label<TAB>text
"""

from __future__ import annotations

import math
import os
import re
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple
from pathlib import Path

import numpy as np
import torch

from .checks import count, env_folder, fraction

if TYPE_CHECKING:  # datasets is imported where it is used: importing it costs seconds
    from datasets import Dataset

__all__ = [
    "SourceUnavailableError",
    "data_dir",
    "load_sts",
    "load_sick",
    "load_nli_triples",
    "load_short_text_clustering",
    "short_text_sample",
    "LabelledText",
    "load_classification",
    "TransferTask",
    "TRANSFER_TASKS",
    "load_transfer_task",
    "load_unlabelled_sentences",
    "load_documents",
    "ImageData",
    "load_images",
    "few_shot_indices",
    "few_labels",
    "colourise",
    "STS_TASKS",
    "SHORT_TEXT_SETS",
    "ShortTextSet",
]


class SourceUnavailableError(RuntimeError):
    """A data set or model could be found neither locally nor on the hub."""


# task -> (hub id, glob of the local test files under $CT_DATA_DIR, or None)
STS_TASKS: dict[str, tuple[str, str | None]] = {
    "sts12": ("mteb/sts12-sts", "sts/semeval/2012.*.test.tsv"),
    "sts13": ("mteb/sts13-sts", "sts/semeval/2013.*.test.tsv"),
    "sts14": ("mteb/sts14-sts", "sts/semeval/2014.*.test.tsv"),
    "sts15": ("mteb/sts15-sts", None),
    "sts16": ("mteb/sts16-sts", None),
    "stsb": ("sentence-transformers/stsb", None),
    "sickr": ("mteb/sickr-sts", None),
}
# The subsets SentEval evaluates (STS13's licensed SMT subset is absent everywhere).
_STS_SUBSETS = {
    "sts12": ("MSRpar", "MSRvid", "SMTeuroparl", "OnWN", "SMTnews"),
    "sts13": ("FNWN", "headlines", "OnWN"),
    "sts14": ("deft-forum", "deft-news", "headlines", "images", "OnWN", "tweet-news"),
}
_SICK_FILES = {"train": "SICK_train.txt", "validation": "SICK_trial.txt"}
_SICK_HUB = "RobZamp/sick"
_SICK_LABELS = ("ENTAILMENT", "NEUTRAL", "CONTRADICTION")

class ShortTextSet(NamedTuple):
    """A short-text clustering set: its number of classes and where its public copy lives.

    ``url`` is a public file holding the same rows as the offline copy (possibly in another
    order), ``None`` where none is known; its lines hold tab-separated fields, the label in
    field ``label_field`` and the text in ``text_field``.
    """

    classes: int
    url: str | None = None
    label_field: int = 0
    text_field: int = 1


# The public files SCCL's authors point to (their get_data.sh copies these paths). The
# SearchSnippets and Tweet files were compared with the offline copies: the same rows
# (SearchSnippets shuffled, in a three-field file); the others follow that script's paths and
# its label<TAB>text reading, and a line that does not parse raises an error naming it.
_STC_ONLINE_ROOT = "https://raw.githubusercontent.com/rashadulrakib/short-text-clustering-enhancement/master/data/"
SHORT_TEXT_SETS: dict[str, ShortTextSet] = {
    "agnews": ShortTextSet(4, _STC_ONLINE_ROOT + "agnewsdataraw-8000"),
    # fields: the source's cluster prediction, the gold label, the text
    "searchsnippets": ShortTextSet(8, _STC_ONLINE_ROOT + "search_snippets/traintest", 1, 2),
    "stackoverflow": ShortTextSet(20, _STC_ONLINE_ROOT + "stackoverflow/stackoverflow_true_text"),
    "biomedical": ShortTextSet(20, _STC_ONLINE_ROOT + "biomedical/biomedical_true_text"),
    "googlenews_ts": ShortTextSet(152, _STC_ONLINE_ROOT + "TS"),
    "googlenews_t": ShortTextSet(152, _STC_ONLINE_ROOT + "T"),
    "googlenews_s": ShortTextSet(152, _STC_ONLINE_ROOT + "S"),
    "tweet": ShortTextSet(89, _STC_ONLINE_ROOT + "tweet-original-order.txt"),
}


def data_dir() -> Path | None:
    """The offline data folder named by ``$CT_DATA_DIR``, or ``None`` when it is unset.

    Raises ``ValueError`` when it names a file: every loader would otherwise find no local copy
    there and turn to the hub without saying why."""
    return env_folder("CT_DATA_DIR")


def _check_source(source: str) -> None:
    if source not in ("auto", "local", "hub"):
        raise ValueError(f"source must be 'auto', 'local' or 'hub', got {source!r}")


def _local_files(relative_glob: str | None) -> list[Path]:
    root = data_dir()
    if root is None or relative_glob is None:
        return []
    return sorted(root.glob(relative_glob))


def _from_dict(columns: dict) -> Dataset:
    from datasets import Dataset

    return Dataset.from_dict(columns)


def load_dataset(*args, **kwargs):
    """``datasets.load_dataset``: the one door to the hub for data (a stand-in in smoke mode, :mod:`.smoke`)."""
    from . import smoke

    if smoke.active():
        return smoke.load_dataset(*args, **kwargs)
    import datasets

    return datasets.load_dataset(*args, **kwargs)


def _from_hub(what: str, load: Callable[[], Dataset], local_hint: str) -> Dataset:
    try:
        return load()
    except Exception as error:  # the hub raises many types; all mean "not reachable/available"
        raise SourceUnavailableError(
            f"could not load {what} from the Hugging Face hub ({type(error).__name__}: {error}). "
            f"Without network access, {local_hint}"
        ) from error


def _choose(source: str, local: list[Path], what: str, local_hint: str) -> bool:
    """True to read the local files; raise when ``source='local'`` and there are none."""
    _check_source(source)
    if source == "local" and not local:
        raise SourceUnavailableError(f"no local copy of {what}: {local_hint}")
    return bool(local) and source != "hub"


class Row(list):
    """The fields of one line of a data file, with where it came from (for error messages)."""

    where: str = ""

    def integer(self, i: int) -> int:
        """Field ``i`` as a non-negative integer (a class label); an error names the file and line otherwise."""
        if not self[i].strip().isdigit():
            raise ValueError(f"{self.where}: expected an integer label in field {i}, got {self[i]!r}")
        return int(self[i])

    def number(self, i: int, low: float = -math.inf, high: float = math.inf) -> float:
        """Field ``i`` as a finite number in [low, high]; an error names the file and line otherwise."""
        try:
            value = float(self[i])
        except ValueError:
            raise ValueError(f"{self.where}: expected a number in column {i + 1}, got {self[i]!r}") from None
        if not math.isfinite(value) or not low <= value <= high:
            raise ValueError(f"{self.where}: column {i + 1} must be a finite number in [{low}, {high}], got {self[i]!r}")
        return value


def _read_columns(path: Path, n_columns: int, header: str | None = None) -> list[Row]:
    """The rows of a tab-separated UTF-8 file (a byte-order mark is allowed). ``header``: the
    text the first line must start with, which is then skipped. An empty file, another
    encoding or a missing header raise an error naming the file."""
    try:
        with open(path, encoding="utf-8-sig") as handle:
            lines = handle.readlines()
    except UnicodeDecodeError as error:
        raise ValueError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start}); convert it to UTF-8") from None
    if header is not None:
        if not lines or not lines[0].startswith(header):
            raise ValueError(f"{path}:1: expected the header line starting with {header!r}; is this the right file?")
        lines[0] = ""
    rows = _split_columns(lines, n_columns, str(path))
    if not rows:
        raise ValueError(f"{path}: the file holds no rows")
    return rows


def _split_columns(lines: Iterable[str], n_columns: int, where: str) -> list[Row]:
    """Tab-separated lines as rows of ``n_columns`` fields (the last keeps any further tabs).

    Empty lines are skipped; a line with fewer fields raises an error naming ``where`` and its line.
    """
    rows = []
    for number, line in enumerate(lines):
        if not line.strip():
            continue
        parts = Row(line.rstrip("\r\n").split("\t", n_columns - 1))
        parts.where = f"{where}:{number + 1}"
        if len(parts) != n_columns:
            raise ValueError(f"{parts.where}: expected {n_columns} tab-separated columns")
        rows.append(parts)
    return rows


# --------------------------------------------------------------------------- STS
def load_sts(task: str, split: str = "test", source: str = "auto") -> Dataset:
    """Sentence pairs with gold similarity: columns ``sentence1``, ``sentence2``, ``score``.

    ``task`` is one of ``sts12`` ... ``sts16``, ``stsb``, ``sickr``. Scores keep their
    source's scale (0-5 for SemEval, 1-5 for SICK-R, 0-1 for the hub's STS-B), which is
    harmless for the Spearman correlation the book reports. Offline copies: STS12-14 test
    from ``$CT_DATA_DIR/sts/semeval``; SICK-R ``train``/``validation`` from the SICK files
    (the SICK test pairs are on the hub only). A local copy that lacks one of the subsets
    SentEval evaluates (the book's offline folder has no STS12 MSRvid) is used with a warning.
    """
    if task not in STS_TASKS:
        raise ValueError(f"task must be one of {sorted(STS_TASKS)}, got {task!r}")
    hub_id, local_glob = STS_TASKS[task]
    if task == "sickr" and split in _SICK_FILES:
        sick = load_sick(split, source=source)
        return sick.select_columns(["sentence1", "sentence2", "score"])
    local = _local_files(local_glob) if split == "test" else []
    hint = (
        f"set CT_DATA_DIR to a folder holding {local_glob}"
        if local_glob
        else f"{task} {split} has no offline copy; use the full profile with network access"
    )
    if _choose(source, local, f"{task} ({split})", hint):
        found = {path.name.split(".")[1] for path in local}
        missing = [name for name in _STS_SUBSETS.get(task, ()) if name not in found]
        if missing:
            warnings.warn(
                f"the local copy of {task} lacks the subset(s) {missing}; scores are not comparable "
                f"with the full {task} (use source='hub' for it)",
                stacklevel=2,
            )
        rows = [(path.name.split(".")[1], row) for path in local for row in _read_columns(path, 3)]
        return _from_dict(
            {
                "sentence1": [r[1] for _, r in rows],
                "sentence2": [r[2] for _, r in rows],
                "score": [r.number(0, 0.0, 5.0) for _, r in rows],
                "subset": [name for name, _ in rows],
            }
        )

    ds = _from_hub(f"{task} ({hub_id}, split {split})", lambda: load_dataset(hub_id, split=split), hint)
    return ds.select_columns(["sentence1", "sentence2", "score"])


def load_sick(split: str = "train", source: str = "auto") -> Dataset:
    """SICK pairs with relatedness and entailment label (Marelli et al., 2014).

    Columns ``sentence1``, ``sentence2``, ``score`` (relatedness 1-5) and ``label``
    (``ENTAILMENT``/``NEUTRAL``/``CONTRADICTION``). Offline: the SemEval-2014 files
    ``$CT_DATA_DIR/sts/sick/SICK_train.txt`` (4,500 pairs) and ``SICK_trial.txt`` (500, the
    ``validation`` split). From the hub: ``RobZamp/sick``, the 9,840-pair release of SICK
    (train 4,439 / validation 495 / test 4,906), so the two sources differ by a few pairs.
    """
    if split not in (*_SICK_FILES, "test"):
        raise ValueError(f"split must be one of {sorted((*_SICK_FILES, 'test'))}, got {split!r}")
    local = _local_files(f"sts/sick/{_SICK_FILES[split]}") if split in _SICK_FILES else []
    hint = (f"set CT_DATA_DIR to a folder holding sts/sick/{_SICK_FILES[split]}" if split in _SICK_FILES
            else "SICK test has no offline copy; it needs network access")
    if _choose(source, local, f"SICK {split}", hint):
        rows = _read_columns(local[0], 5, header="pair_ID")
        for r in rows:
            if r[4] not in _SICK_LABELS:
                raise ValueError(f"{r.where}: unknown entailment label {r[4]!r} (expected one of {_SICK_LABELS})")
        return _from_dict(
            {
                "sentence1": [r[1] for r in rows],
                "sentence2": [r[2] for r in rows],
                "score": [r.number(3, 1.0, 5.0) for r in rows],
                "label": [r[4] for r in rows],
            }
        )

    # the hub repository holds a loading script; its parquet conversion loads without one
    ds = _from_hub(f"SICK {split} ({_SICK_HUB})",
                   lambda: load_dataset(_SICK_HUB, revision="refs/convert/parquet", split=split), hint)
    names = ds.features["label"].names
    return _from_dict(
        {
            "sentence1": list(ds["sentence_A"]),
            "sentence2": list(ds["sentence_B"]),
            "score": [float(x) for x in ds["relatedness_score"]],
            "label": [names[i].upper() for i in ds["label"]],
        }
    )


# NLI triples on the hub (sentence-transformers' copies): SimCSE's own 275k-triple set, and all of SNLI+MNLI
_NLI_HUB = {"nli-for-simcse": "sentence-transformers/nli-for-simcse", "all-nli": "sentence-transformers/all-nli"}


def load_nli_triples(name: str, limit: int | None = None, source: str = "auto") -> Dataset:
    """(premise, entailment, contradiction) triples for supervised SimCSE: columns ``anchor``, ``positive``, ``negative``.

    ``nli-for-simcse``: the 274,951 SNLI + MultiNLI triples supervised SimCSE trains on
    (hub: ``sentence-transformers/nli-for-simcse``, subset ``triplet``). ``all-nli``: all
    557,850 SNLI + MultiNLI triples (``sentence-transformers/all-nli``, subset ``triplet``). ``sick``: built from SICK train
    (:func:`load_sick`), where each premise that entails a hypothesis and contradicts some sentence (SICK labels a
    contradiction in one direction; it holds in both) gives one triple per entailment, its
    contradiction chosen round-robin (SimCSE also keeps one contradiction per premise):
    259 triples from the offline SemEval file. SICK is small and its hypotheses are
    rewrites of the premise, so it teaches the recipe, not the paper's numbers.
    """
    limit = count(limit, "limit", optional=True)
    if name == "sick":
        sick = load_sick("train", source=source)
        entails: dict[str, list[str]] = {}
        contradicts: dict[str, list[str]] = {}
        for a, b, label in zip(sick["sentence1"], sick["sentence2"], sick["label"]):
            if label == "ENTAILMENT":
                entails.setdefault(a, []).append(b)
            elif label == "CONTRADICTION":  # contradiction is symmetric: use both directions
                contradicts.setdefault(a, []).append(b)
                contradicts.setdefault(b, []).append(a)
        triples = [
            (premise, positive, contradicts[premise][i % len(contradicts[premise])])
            for premise, positives in entails.items()
            if premise in contradicts
            for i, positive in enumerate(positives)
        ]
        ds = _from_dict({k: [t[i] for t in triples] for i, k in enumerate(("anchor", "positive", "negative"))})
    elif name in _NLI_HUB:
        _check_source(source)
        if source == "local":
            raise SourceUnavailableError(f"{name} has no local copy; use name='sick' offline")
        hub_id = _NLI_HUB[name]
        ds = _from_hub(
            f"{name} ({hub_id}, triplet)",
            lambda: load_dataset(hub_id, "triplet", split="train"),
            "use name='sick' (the quick profile's offline NLI triples)",
        )
    else:
        raise ValueError(f"name must be one of {sorted(_NLI_HUB) + ['sick']}, got {name!r}")
    return ds if limit is None else ds.select(range(min(limit, len(ds))))


# --------------------------------------------------------------------------- clustering
def load_short_text_clustering(name: str, source: str = "auto") -> Dataset:
    """One of the eight short-text clustering sets SCCL uses: columns ``text``, ``label``.

    Read from ``$CT_DATA_DIR/short_text_clustering/<name>.tsv`` (``label<TAB>text``);
    otherwise the same rows are downloaded from the set's public file
    (``SHORT_TEXT_SETS[name].url``) where one is known. Texts are stripped of surrounding
    whitespace in both cases; the row order may differ between the two sources.
    """
    if name not in SHORT_TEXT_SETS:
        raise ValueError(f"name must be one of {sorted(SHORT_TEXT_SETS)}, got {name!r}")
    spec = SHORT_TEXT_SETS[name]
    local = _local_files(f"short_text_clustering/{name}.tsv")
    hint = f"set CT_DATA_DIR to a folder holding short_text_clustering/{name}.tsv"
    if _choose(source, local, name, hint):
        rows = _read_columns(local[0], 2)
    else:
        if spec.url is None:
            raise SourceUnavailableError(f"{name} has no known public file: {hint}")

        raw = _from_hub(name, lambda: load_dataset("text", data_files=spec.url, split="train"), hint)
        rows = _fields(raw["text"], spec, spec.url)
    return _from_dict({"text": [r[1].strip() for r in rows], "label": [r.integer(0) for r in rows]})


def short_text_sample(name: str, n: int | None = None, seed: int = 0) -> tuple[list[str], np.ndarray, int]:
    """``(texts, labels, K)``: a fixed random sample of ``n`` texts of a short-text clustering set (all
    of it when ``n`` is ``None`` or at least its size), their labels and the set's number of
    categories. Chapters "SCCL" and "SimCSE" (its clustering comparison)."""
    n = count(n, "n", optional=True)
    ds = load_short_text_clustering(name)
    k = len(set(ds["label"]))
    if n is not None and n < len(ds):
        ds = ds.shuffle(seed=seed).select(range(n))
    return list(ds["text"]), np.array(ds["label"]), k


def _fields(lines: Sequence[str], spec: ShortTextSet, where: str) -> list[Row]:
    """(label, text) rows from each non-empty line of a downloaded short-text file."""
    width = max(spec.label_field, spec.text_field) + 1
    rows = []
    for parts in _split_columns(lines, width, where):
        row = Row([str(parts.integer(spec.label_field)), parts[spec.text_field]])
        row.where = parts.where
        rows.append(row)
    if not rows:
        raise ValueError(f"{where}: the file holds no rows")
    return rows


# --------------------------------------------------------------------------- classification
@dataclass
class LabelledText:
    """A text classification task: training and test texts with labels ``0 .. C-1``."""

    train_texts: list[str]
    train_labels: list[int]
    test_texts: list[str]
    test_labels: list[int]
    class_names: list[str]


# hub id, training split, test split (SST-2's test labels are hidden: its validation split is the test set)
_CLASSIFICATION_HUB = {
    "agnews": ("fancyzhx/ag_news", "text", "train", "test"),
    "sst2": ("stanfordnlp/sst2", "sentence", "train", "validation"),
}
_AGNEWS_CLASSES = ["World", "Sports", "Business", "Sci/Tech"]


def load_classification(name: str, source: str = "auto", test_size: int = 1000, seed: int = 0) -> LabelledText:
    """A labelled set for fine-tuning (chapters "SCL fine-tuning" and "Adversarial contrastive learning").

    ``agnews``: offline, SCCL's 8,000-text AG News sample from ``short_text_clustering``
    (lower-cased, stop words removed), split at random (``seed``) into ``test_size`` test texts
    and the rest for training; from the hub, ``fancyzhx/ag_news`` (120,000 / 7,600).
    ``sst2``: ``stanfordnlp/sst2`` from the hub, its validation split as the test set.
    """
    if name not in _CLASSIFICATION_HUB:
        raise ValueError(f"name must be one of {sorted(_CLASSIFICATION_HUB)}, got {name!r}")
    local = _local_files("short_text_clustering/agnews.tsv") if name == "agnews" else []
    if _choose(source, local, name, "set CT_DATA_DIR to the shared data folder (agnews only)"):
        ds = load_short_text_clustering("agnews", source="local")
        if isinstance(test_size, bool) or not isinstance(test_size, int) or not 0 < test_size < len(ds):
            raise ValueError(f"test_size must be an integer in (0, {len(ds)}), got {test_size!r}")
        order = np.random.default_rng(seed).permutation(len(ds)).tolist()  # plain ints: datasets 4.0 refuses NumPy's
        all_texts, all_labels = list(ds["text"]), list(ds["label"])
        texts, labels = [all_texts[i] for i in order], [all_labels[i] - 1 for i in order]
        return LabelledText(texts[test_size:], labels[test_size:], texts[:test_size], labels[:test_size],
                            list(_AGNEWS_CLASSES))

    hub_id, column, train_split, test_split = _CLASSIFICATION_HUB[name]
    ds = _from_hub(f"{name} ({hub_id})", lambda: load_dataset(hub_id), "use agnews with CT_DATA_DIR set to the shared data folder.")
    names = ds[train_split].features["label"].names
    return LabelledText(list(ds[train_split][column]), list(ds[train_split]["label"]),
                        list(ds[test_split][column]), list(ds[test_split]["label"]), list(names))


# --------------------------------------------------------------------------- SentEval's transfer tasks
@dataclass
class TransferTask:
    """A SentEval transfer task: items are sentences, or ``(sentence, sentence)`` pairs (MRPC), with
    labels ``0 .. C-1``. Without test items the task is scored by cross-validation of the
    training items (MR, CR, SUBJ, MPQA); with them, a classifier fitted on the training items
    (its strength chosen on the dev items where there are some, SST-2) scores the test items."""

    name: str
    train_texts: list
    train_labels: list[int]
    dev_texts: list | None = None
    dev_labels: list[int] | None = None
    test_texts: list | None = None
    test_labels: list[int] | None = None


# task: (hub id, config, text column(s), label column, how the splits are used). The cross-validation
# tasks pool every split (SentEval pools each task's files); SST-2 takes GLUE's training and
# validation splits (its test labels are hidden) and the labelled test split of jxm/sst2; MRPC
# pools GLUE's training and validation splits (SentEval's 4,076 training pairs).
TRANSFER_TASKS: dict[str, tuple[str, str | None, tuple[str, ...], str, str]] = {
    "mr": ("cornell-movie-review-data/rotten_tomatoes", None, ("text",), "label", "cv"),
    "cr": ("SetFit/SentEval-CR", None, ("text",), "label", "cv"),
    "subj": ("SetFit/subj", None, ("text",), "label", "cv"),
    "mpqa": ("jxm/mpqa", None, ("sentence",), "label", "cv"),
    "sst2": ("glue", "sst2", ("sentence",), "label", "dev"),
    "trec": ("jxm/trec", None, ("sentence",), "label", "split"),
    "mrpc": ("glue", "mrpc", ("sentence1", "sentence2"), "label", "split"),
}


def _items(ds, columns: tuple[str, ...]) -> list:
    if len(columns) == 1:
        return list(ds[columns[0]])
    return list(zip(*(ds[c] for c in columns)))


def load_transfer_task(name: str, max_items: int | None = None, seed: int = 0) -> TransferTask:
    """One of SentEval's seven transfer tasks from the hub (:data:`TRANSFER_TASKS`), or ``agnews``:
    offline, the AG News titles of :func:`load_classification` as a cross-validation task.

    ``max_items`` keeps a random sample (``seed``) of that many training items (the quick and colab
    profiles); SentEval uses them all. Chapter "SimCSE".
    """
    if name != "agnews" and name not in TRANSFER_TASKS:
        raise ValueError(f"name must be 'agnews' or one of {sorted(TRANSFER_TASKS)}, got {name!r}")
    max_items = count(max_items, "max_items", minimum=2, optional=True)

    def sample(items: list, labels: list[int]) -> tuple[list, list[int]]:
        if max_items is None or max_items >= len(items):
            return items, labels
        keep = sorted(np.random.default_rng(seed).choice(len(items), max_items, replace=False))
        return [items[i] for i in keep], [labels[i] for i in keep]

    if name == "agnews":
        task = load_classification("agnews")
        return TransferTask(name, *sample(task.train_texts, task.train_labels))
    hub_id, config, columns, label, use = TRANSFER_TASKS[name]
    hint = "the transfer tasks come from the hub; offline, use 'agnews'."
    ds = _from_hub(f"{name} ({hub_id})", lambda: load_dataset(hub_id, config), hint)
    if use == "cv":
        pooled = [(item, y) for split in ds for item, y in zip(_items(ds[split], columns), ds[split][label])]
        return TransferTask(name, *sample([x for x, _ in pooled], [int(y) for _, y in pooled]))
    if use == "dev":  # SST-2: GLUE's train and validation, the labelled test split of jxm/sst2
        test = _from_hub(f"{name} test (jxm/sst2)", lambda: load_dataset("jxm/sst2", split="test"), hint)
        train = sample(_items(ds["train"], columns), list(ds["train"][label]))
        return TransferTask(name, *train, _items(ds["validation"], columns), list(ds["validation"][label]),
                            _items(test, columns), list(test[label]))
    train_splits = [s for s in ("train", "validation") if s in ds and (name == "mrpc" or s == "train")]
    items = [x for s in train_splits for x in _items(ds[s], columns)]
    labels = [int(y) for s in train_splits for y in ds[s][label]]
    return TransferTask(name, *sample(items, labels), test_texts=_items(ds["test"], columns),
                        test_labels=[int(y) for y in ds["test"][label]])


# --------------------------------------------------------------------------- sentences
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'])")


def load_documents(name: str = "lee_background") -> list[str]:
    """Whole documents for span sampling (DeCLUTR): ``lee_background``, gensim's 300 news articles, offline."""
    if name != "lee_background":
        raise ValueError(f"name must be 'lee_background', got {name!r}")
    try:
        from gensim.test.utils import datapath
    except ImportError as error:
        raise SourceUnavailableError(
            "the quick profile's offline corpus comes with gensim: pip install 'contrastive-tutorial[offline]'"
        ) from error
    with open(datapath("lee_background.cor"), encoding="utf-8") as handle:
        return [line.strip() for line in handle if line.strip()]


def load_unlabelled_sentences(name: str, limit: int | None = None, min_words: int = 4) -> Dataset:
    """Unlabelled sentences for unsupervised training: column ``text``.

    ``wiki1m``: the one million Wikipedia sentences of SimCSE, from the hub
    (``princeton-nlp/datasets-for-simcse``). ``lee_background``: gensim's copy of the Lee
    news corpus (300 Australian news articles) split into sentences, offline. ``corpus_en``:
    the book's English pretraining corpus (``$CT_DATA_DIR/corpus/en``: Wikipedia, Wikinews and
    Gutenberg) split into sentences, in its document order, offline: the raw encoder's
    own text, as wiki1m is BERT's.
    Sentences shorter than ``min_words`` words are dropped; ``limit`` keeps the first ones.
    """
    limit = count(limit, "limit", optional=True)
    if name == "lee_background":
        sentences = [s.strip() for doc in load_documents(name) for s in _SENTENCE_END.split(doc) if s.strip()]
    elif name == "corpus_en":
        from .pretrain import read_corpus

        sentences = []
        for doc in read_corpus("en", max_words=None if limit is None else 40 * limit):
            sentences += [s.strip() for paragraph in doc for s in _SENTENCE_END.split(paragraph)
                          if len(s.split()) >= min_words]
    elif name == "wiki1m":
        url = "hf://datasets/princeton-nlp/datasets-for-simcse/wiki1m_for_simcse.txt"
        hint = "use the quick profile's lee_background"
        if limit is not None:  # stream the first sentences instead of downloading all of the file
            def first() -> list[str]:
                kept = []
                for row in load_dataset("text", data_files=url, split="train", streaming=True):
                    if len(row["text"].split()) >= min_words:
                        kept.append(row["text"])
                        if len(kept) == limit:
                            break
                return kept

            sentences = _from_hub("wiki1m", first, hint)
        else:
            sentences = _from_hub("wiki1m", lambda: load_dataset("text", data_files=url, split="train"), hint)["text"]
    else:
        raise ValueError(f"name must be 'wiki1m', 'lee_background' or 'corpus_en', got {name!r}")
    sentences = [s for s in sentences if len(s.split()) >= min_words]
    return _from_dict({"text": sentences if limit is None else sentences[:limit]})


# --------------------------------------------------------------------------- images
@dataclass
class ImageData:
    """Image classification data as tensors: ``uint8`` images ``(N, C, H, W)``, labels ``(N,)``."""

    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    classes: Sequence[str]

    def __repr__(self) -> str:
        n, c, h, w = self.train_images.shape
        return (
            f"ImageData({n} train / {len(self.test_images)} test images of {c}x{h}x{w}, "
            f"{len(self.classes)} classes)"
        )


def few_shot_indices(labels: Sequence[int] | np.ndarray | torch.Tensor, per_class: int, seed: int = 0) -> list[int]:
    """Sorted indices of ``per_class`` examples of every class, drawn without replacement with ``seed``:
    the few-shot training sets of chapters "SimCLR intuition" and "SCL fine-tuning"."""
    per_class = count(per_class, "per_class")
    labels = np.asarray(labels.cpu() if isinstance(labels, torch.Tensor) else labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be a 1-D sequence of class indices, got shape {labels.shape} of {labels.dtype}")
    rng = np.random.default_rng(seed)
    chosen = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        if len(members) < per_class:
            raise ValueError(f"class {c} has {len(members)} examples, fewer than per_class={per_class}")
        chosen.extend(rng.choice(members, per_class, replace=False).tolist())
    return sorted(chosen)


def few_labels(data: ImageData, per_class: int, seed: int = 0) -> ImageData:
    """``data`` with its training set cut to ``per_class`` labelled images of each class (drawn with
    ``seed``, :func:`few_shot_indices`) and the same test set: chapter "SimCLR intuition"'s label budget."""
    if not isinstance(data, ImageData):
        raise TypeError(f"data must be an ImageData, got {type(data).__name__}")
    idx = torch.as_tensor(few_shot_indices(data.train_labels, per_class, seed))
    return ImageData(data.train_images[idx], data.train_labels[idx], data.test_images, data.test_labels, data.classes)


def colourise(data: ImageData, seed: int = 0) -> ImageData:
    """Paint each grayscale image in its own colours: ``x -> (1 - x) * background + x * foreground``.

    Every image (train and test) gets a random dark background (each RGB channel in
    [0, 0.5]) and a random bright foreground (in [0.5, 1]), drawn with ``seed``. Colour then
    identifies an image but says nothing about its class: the shortcut that makes colour
    jitter necessary in chapter "SimCLR intuition" (two crops of one image share its colours).
    """
    if data.train_images.shape[1] != 1:
        raise ValueError(f"colourise needs 1-channel images, got {data.train_images.shape[1]} channels")
    generator = torch.Generator().manual_seed(seed)

    def paint(images: torch.Tensor) -> torch.Tensor:
        n = len(images)
        background = torch.rand(n, 3, 1, 1, generator=generator) * 0.5
        foreground = 0.5 + torch.rand(n, 3, 1, 1, generator=generator) * 0.5
        x = images.float() / 255
        return ((1 - x) * background + x * foreground).mul(255).round().to(torch.uint8)

    return ImageData(paint(data.train_images), data.train_labels, paint(data.test_images), data.test_labels, data.classes)


def load_images(name: str, test_fraction: float = 0.3, seed: int = 0) -> ImageData:
    """Images for the vision chapters.

    ``digits``: scikit-learn's bundled 1,797 handwritten 8x8 digits (offline), split
    ``test_fraction`` stratified with ``seed``. ``cifar10``: CIFAR-10's 50,000/10,000
    32x32 colour images from the hub (``uoft-cs/cifar10``).
    """
    test_fraction = fraction(test_fraction, "test_fraction")
    if name == "digits":
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        digits = load_digits()
        images = np.round(digits.images * (255 / 16)).astype(np.uint8)[:, None]
        tr_x, te_x, tr_y, te_y = train_test_split(
            images, digits.target, test_size=test_fraction, stratify=digits.target, random_state=seed
        )
        return ImageData(
            torch.from_numpy(tr_x), torch.from_numpy(tr_y), torch.from_numpy(te_x), torch.from_numpy(te_y),
            [str(d) for d in range(10)],
        )
    if name == "cifar10":
        ds = _from_hub("CIFAR-10 (uoft-cs/cifar10)", lambda: load_dataset("uoft-cs/cifar10"), "use the 'digits' data")

        def to_tensors(split: Dataset) -> tuple[torch.Tensor, torch.Tensor]:
            images = np.stack([np.asarray(img, dtype=np.uint8) for img in split["img"]])
            return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(), torch.tensor(split["label"])

        (tr_x, tr_y), (te_x, te_y) = to_tensors(ds["train"]), to_tensors(ds["test"])
        return ImageData(tr_x, tr_y, te_x, te_y, ds["train"].features["label"].names)
    raise ValueError(f"name must be 'digits' or 'cifar10', got {name!r}")
