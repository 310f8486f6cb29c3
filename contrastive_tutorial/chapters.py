"""One record per chapter: the book's table of contents, the map, the Results page and the budget table read it.

A chapter's settings per profile live in :mod:`contrastive_tutorial.profiles` under the
chapter's ``profile`` key; everything else that names a chapter is here. ``tests/test_chapters.py``
checks that ``_toc.yml``, the notebooks and the profiles agree with it.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Chapter", "CHAPTERS", "chapter"]


@dataclass(frozen=True)
class Chapter:
    """What the book says of one chapter.

    ``changes`` is what the chapter changes in InfoNCE (views, positives, negatives,
    temperature; or "no negatives" for the methods that are not InfoNCE); ``paper`` the
    paper's headline number with its setting (``None`` for the appendix); ``full`` the full
    profile's setting that aims at it; ``prerequisites`` the chapters to read first (keys).
    ``profile`` names the settings the notebook reads (``ct.profile(...)``); ``map_xy`` its
    place on the map around InfoNCE (``None`` for InfoNCE itself, in the middle).
    """

    key: str
    notebook: str
    title: str
    part: str
    changes: str
    paper: str | None
    full: str | None
    prerequisites: tuple[str, ...]
    profile: str
    map_xy: tuple[float, float] | None


CHAPTERS: dict[str, Chapter] = {c.key: c for c in (
    Chapter("infonce", "book/infonce", "InfoNCE and temperature", "Foundations",
            "a softmax that picks each anchor's positive among the negatives; the temperature sets how hard",
            "Wang & Isola: alignment and uniformity track downstream accuracy (no single headline number)",
            "ResNet-18 on CIFAR-10, the temperature sweep with 3 seeds", (), "infonce", None),
    Chapter("simclr", "book/simclr", "SimCLR intuition", "Vision",
            "views: image augmentations; negatives: the other images",
            "ImageNet linear probe, top-1: 69.3 % (ResNet-50), 76.5 % (ResNet-50 4x)",
            "ResNet-18 on CIFAR-10, batch 512, linear probe and kNN (one seed)", ("infonce",), "simclr", (0.17, 0.84)),
    Chapter("beyond", "book/beyond_negatives", "Beyond negatives", "Vision",
            "negatives from a queue (MoCo) or none: BYOL, SimSiam, SwAV, Barlow Twins",
            "ImageNet linear probe, ResNet-50: MoCo 60.6, SwAV 75.3, BYOL 74.3, SimSiam 71.3, Barlow Twins 73.2 (%)",
            "ResNet-18 on CIFAR-10, the five methods with the same budget", ("simclr",), "beyond", (0.17, 0.50)),
    Chapter("simcse", "book/simcse", "SimCSE", "Sentence embeddings",
            "views: two dropout masks; positives: NLI entailments when supervised",
            "average STS Spearman, BERT-base: unsupervised 76.25, supervised 81.57",
            "bert-base-uncased, wiki1m (unsupervised), NLI triples (supervised), seven STS tasks",
            ("infonce",), "simcse", (0.50, 0.90)),
    Chapter("promptbert", "book/promptbert", "PromptBERT", "Sentence embeddings",
            "the vector: a template's [MASK]; views: two templates",
            "average STS Spearman, unsupervised BERT-base: 78.54",
            "bert-base-uncased, template denoising and contrast on wiki1m, seven STS tasks",
            ("simcse",), "promptbert", (0.83, 0.84)),
    Chapter("scl", "book/scl", "SCL fine-tuning", "Fine-tuning classifiers",
            "positives: same-label examples, added to cross-entropy",
            "few-shot GLUE with RoBERTa-large: gains over cross-entropy, largest with 20 examples (paper's Table 2)",
            "roberta-large on SST-2, 20 / 100 / 1000 examples per class, 5 seeds", ("infonce",), "scl", (0.83, 0.50)),
    Chapter("adversarial", "book/adversarial", "Adversarial contrastive learning", "Fine-tuning classifiers",
            "positives: adversarially perturbed embeddings (SCAL with labels, USCAL without)",
            "SCAL: +1.75 GLUE average over BERT-base; USCAL: 77.29 average STS Spearman (BERT-base)",
            "bert-base-uncased on SST-2 (all data, 3 seeds); USCAL on wiki1m, seven STS tasks",
            ("scl", "simcse"), "adversarial", (0.83, 0.16)),
    Chapter("sccl", "book/sccl", "SCCL", "Clustering",
            "instance contrast plus a clustering head for short texts",
            "clustering accuracy: AG News 88.2, SearchSnippets 85.2, StackOverflow 75.5, Biomedical 46.2 (%)",
            "distilbert-base-nli-stsb-mean-tokens, the eight sets, 1,000 steps of batch 400",
            ("simcse",), "sccl", (0.50, 0.10)),
    Chapter("scaling", "book/scaling", "Appendix: large batches and several GPUs", "Appendix",
            "negatives from every GPU; gradient caching", None, None, ("simcse",), "simcse", (0.17, 0.16)),
)}


def chapter(key: str) -> Chapter:
    """The record of chapter ``key``."""
    if key not in CHAPTERS:
        raise ValueError(f"chapter must be one of {list(CHAPTERS)}, got {key!r}")
    return CHAPTERS[key]
