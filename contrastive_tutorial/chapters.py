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
    place on the map around InfoNCE (``None`` for InfoNCE itself, in the middle). ``colab`` is
    what the colab run is expected to show, with the source of every number it quotes, and
    ``only_full`` what needs the full profile; each chapter prints both before it trains.
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
    colab: str = ""
    only_full: str = ""


CHAPTERS: dict[str, Chapter] = {c.key: c for c in (
    Chapter("infonce", "book/infonce", "InfoNCE and temperature", "Foundations",
            "a softmax that picks each anchor's positive among the negatives; the temperature sets how hard",
            "Wang & Isola: alignment and uniformity track downstream accuracy (no single headline number)",
            "ResNet-18 on CIFAR-10, the temperature sweep with 3 seeds", (), "infonce", None,
            colab=("the temperature's effect on alignment, uniformity and accuracy with ResNet-18 on CIFAR-10 (10 "
                   "epochs, five temperatures and the debiased and hard-negative losses, one seed); no paper reports "
                   "these after 10 epochs, so the chapter's own table is the reference"),
            only_full=("three seeds, so that the ranking of temperatures and of the three losses carries an interval,"
                       " and 100 epochs")),
    Chapter("simclr", "book/simclr", "SimCLR intuition", "Vision",
            "views: image augmentations; negatives: the other images",
            "ImageNet linear probe, top-1, 1,000 epochs: 69.3 % (ResNet-50), 76.5 % (ResNet-50 4x)",
            "ResNet-18 on CIFAR-10, batch 512, linear probe and kNN (one seed)", ("infonce",), "simclr", (0.17, 0.84),
            colab=("SimCLR's ResNet-18 above a random ResNet-18 in linear-probe and kNN accuracy after 10 epochs; no"
                   " paper or official code reports a 10-epoch number (for scale: the sthalles/SimCLR README reports"
                   " 69.82 % linear-probe accuracy for ResNet-18 after 100 epochs)"),
            only_full="500 epochs at batch 512"),
    Chapter("beyond", "book/beyond_negatives", "Beyond negatives", "Vision",
            "negatives from a queue (MoCo) or none: BYOL, SimSiam, SwAV, Barlow Twins",
            ("ImageNet linear probe, ResNet-50 (%): MoCo v1 60.6 (200 epochs; MoCo v2 67.5 at 200, 71.1 at 800), "
             "SwAV 75.3 (800 epochs with multi-crop, 2x224 + 6x96 px views), BYOL 74.3 (1,000), SimSiam 71.3 (800), "
             "Barlow Twins 73.2 (1,000)"),
            "ResNet-18 on CIFAR-10, the five methods with the same budget", ("simclr",), "beyond", (0.17, 0.50),
            colab=("which of the seven methods learn and which collapse without their guard (SimSiam without its "
                   "predictor or its stop-gradient, Barlow Twins without its off-diagonal term), 6 epochs each on "
                   "CIFAR-10, with the collapse dashboard over the steps; accuracies far below the papers' ImageNet "
                   "numbers, which come from hundreds of epochs"),
            only_full=("500 epochs per method, and the comparison of SimCLR and MoCo at batch 64 (queues of 128 and "
                       "4,096 keys) over 100 epochs rather than one")),
    Chapter("simcse", "book/simcse", "SimCSE", "Sentence embeddings",
            "views: two dropout masks; positives: NLI entailments when supervised",
            "average STS Spearman, BERT-base: unsupervised 76.25, supervised 81.57",
            "bert-base-uncased, wiki1m (unsupervised), NLI triples (supervised), seven STS tasks",
            ("infonce",), "simcse", (0.50, 0.90),
            colab=("unsupervised SimCSE lifting raw BERT-base well above BERT's first-last average of 56.70 (SimCSE "
                   "paper, Table 5, seven STS tasks) after 2,000 of the epoch's 15,625 steps, keeping the best "
                   "checkpoint on STS-B dev every 250 steps (Appendix A); the paper shows no dev curve against "
                   "steps, so how close 2,000 steps come to its 76.25 is measured here, not promised"),
            only_full=("the whole epoch of wiki1m (the paper: 76.25) and supervised SimCSE's three epochs over the NLI "
                       "triples (81.57)")),
    Chapter("promptbert", "book/promptbert", "PromptBERT", "Sentence embeddings",
            "the vector: a template's [MASK]; views: two templates",
            "average STS Spearman, unsupervised BERT-base: 78.54",
            "bert-base-uncased, template denoising and contrast on wiki1m, seven STS tasks",
            ("simcse",), "promptbert", (0.83, 0.84),
            colab=("the template's [MASK] vector of untrained BERT-base above its raw poolers: 67.85 average STS in "
                   "the official code (kongds/Prompt-BERT run.sh, case bert-prompt, confirmed in its issue 22, where"
                   " a final period added to every sentence moved the score from 62 to 67); then 1,000 of the "
                   "epoch's 3,906 steps of training (an unsupervised bert-large run shared in the repository's issue"
                   " 3 was near its best STS-B dev score by step 250)"),
            only_full="the whole epoch (the paper: 78.54, mean of 10 seeds)"),
    Chapter("scl", "book/scl", "SCL fine-tuning", "Fine-tuning classifiers",
            "positives: same-label examples, added to cross-entropy",
            "few-shot GLUE with RoBERTa-large: gains over cross-entropy, largest with 20 examples (paper's Table 2)",
            "roberta-large on SST-2, 20 / 100 / 1000 examples per class, 5 seeds", ("infonce",), "scl", (0.83, 0.50),
            colab=("cross-entropy against CE + SCL with RoBERTa-large on SST-2 at 20, 100 and 1,000 examples per "
                   "class, 3 seeds, 10 epochs; the paper reports its largest gain at 20 examples, and one public "
                   "reproduction (Jd8111997/Supervised-contrastive-learning) could not reproduce that gain, so the "
                   "interval over seeds decides"),
            only_full="5 seeds at the paper's 128 tokens"),
    Chapter("adversarial", "book/adversarial", "Adversarial contrastive learning", "Fine-tuning classifiers",
            "positives: adversarially perturbed embeddings (SCAL with labels, USCAL without)",
            "SCAL: +1.75 GLUE average over BERT-base; USCAL: 77.29 average STS Spearman (BERT-base)",
            "bert-base-uncased on SST-2 (all data, 3 seeds); USCAL on wiki1m, seven STS tasks",
            ("scl", "simcse"), "adversarial", (0.83, 0.16),
            colab=("SCAL's clean and attacked accuracy against cross-entropy with BERT-base on 1,000 SST-2 examples "
                   "per class (2 seeds), and 1,000 steps of USCAL on wiki1m; the paper's numbers (SCAL +1.75 GLUE "
                   "average over BERT-base, USCAL 77.29 average STS) are for all the data and a whole epoch"),
            only_full="all of SST-2 with 3 seeds, and USCAL's whole epoch"),
    Chapter("sccl", "book/sccl", "SCCL", "Clustering",
            "instance contrast plus a clustering head for short texts",
            "clustering accuracy: AG News 88.2, SearchSnippets 85.2, StackOverflow 75.5, Biomedical 46.2 (%)",
            "distilbert-base-nli-stsb-mean-tokens, the eight sets, 3,000 steps of batch 400",
            ("simcse",), "sccl", (0.50, 0.10),
            colab=("SCCL's accuracy and NMI against k-means on the starting embeddings, on SearchSnippets and AG "
                   "News, 1,000 steps of batch 400 (a third of the official explicit-augmentation run), one seed; "
                   "the authors advise following "
                   "accuracy along training, since long runs can degrade (amazon-science/sccl issue 3)"),
            only_full="the official 3,000 steps on all eight sets with 3 seeds (the paper: AG News 88.2, "
                      "SearchSnippets 85.2 %)"),
    Chapter("scaling", "book/scaling", "Appendix: large batches and several GPUs", "Appendix",
            "negatives from every GPU; gradient caching", None, None, ("simcse",), "scaling", (0.17, 0.16),
            colab="gradient caching's equal gradients and smaller memory on one GPU",
            only_full="several GPUs, under torchrun"),

)}


def chapter(key: str) -> Chapter:
    """The record of chapter ``key``."""
    if key not in CHAPTERS:
        raise ValueError(f"chapter must be one of {list(CHAPTERS)}, got {key!r}")
    return CHAPTERS[key]
