"""SCL fine-tuning (Gunel et al., 2021): cross-entropy plus a supervised contrastive term.

A classifier is a text encoder whose [CLS] vector :math:`h_i` feeds a linear head. The batch
loss is

.. math::
    \\mathcal{L} = (1 - \\lambda)\\,\\mathcal{L}_{CE} + \\lambda\\,\\mathcal{L}_{SCL},\\qquad
    \\mathcal{L}_{SCL} = \\frac{1}{|A'|}\\sum_{i \\in A'} \\frac{-1}{N_{y_i} - 1}
    \\sum_{j \\ne i,\\, y_j = y_i} \\log \\frac{\\exp(\\Phi_i \\cdot \\Phi_j / \\tau)}
    {\\sum_{k \\ne i} \\exp(\\Phi_i \\cdot \\Phi_k / \\tau)}

with :math:`\\Phi_i = h_i / \\lVert h_i \\rVert`, :math:`N_{y_i}` the examples of class
:math:`y_i` in the batch and :math:`A'` the anchors with at least one other example of their
class (:func:`~contrastive_tutorial.losses.supcon_loss` with one view per example).

Where it differs from Khosla et al. (2020): one view per example (no augmentation: the other
examples of the class are the positives), the term is added to cross-entropy during
fine-tuning rather than used for pre-training followed by a linear probe, and no projection
head. Gunel et al. sum over the batch; this mean over anchors rescales the term by the batch
size, which a different :math:`\\lambda` absorbs. Chapter "SCL fine-tuning".
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .. import checks
from ..data import LabelledText, few_shot_indices
from ..encoders import TextEncoder
from ..losses import supcon_loss
from ..scale import gathered
from ..profiles import seed_everything
from ..train import Batches, History, adam, eval_mode, train

__all__ = ["TextClassifier", "scl_objective", "flip_labels", "few_shot_indices", "SCLFineTune", "train_classifier", "fine_tune",
           "predict", "accuracy"]


class TextClassifier(nn.Module):
    """``encoder``'s vector of each sentence (its pooler; [CLS] by default), dropout, a linear head.

    ``forward(batch)`` returns ``(logits, h)``: class scores ``(B, C)`` and the vectors ``(B, D)``
    the contrastive term uses. ``batch`` is a list of sentences or a tokenised dict.
    """

    def __init__(self, encoder: TextEncoder, n_classes: int, dropout: float = 0.1) -> None:
        super().__init__()
        if n_classes < 2:
            raise ValueError(f"n_classes must be >= 2, got {n_classes}")
        self.encoder, self.n_classes = encoder, n_classes
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(encoder.model.config.hidden_size, n_classes))

    def forward(self, batch) -> tuple[Tensor, Tensor]:
        h = self.encoder(batch)
        return self.head(h), h


def scl_objective(
    logits: Tensor, embeddings: Tensor, labels: Tensor, lambd: float, temperature: float = 0.3,
    reduction: str = "mean",
) -> Tensor:
    """:math:`(1-\\lambda)\\,\\mathrm{CE}(\\text{logits}, y) + \\lambda\\,\\mathcal{L}_{SCL}(h, y)` (module docstring).

    ``lambd`` in [0, 1]: 0 is plain cross-entropy. Cross-entropy is the batch mean. The
    contrastive term is the mean over the anchors that have a same-class partner
    (``reduction="mean"``) or, as in Gunel et al.'s equation, their sum (``"sum"``: the same
    term times the number of such anchors, so that a given ``lambd`` weighs it as the paper
    does). When no class occurs twice in the batch the contrastive term has no anchor and
    counts as 0 (cross-entropy alone for that batch).
    """
    if not 0 <= lambd <= 1:
        raise ValueError(f"lambd must lie in [0, 1], got {lambd}")
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
    if logits.dim() != 2 or logits.shape[0] != embeddings.shape[0]:
        raise ValueError(f"logits must be (B, C) with the B of embeddings {tuple(embeddings.shape)}, got {tuple(logits.shape)}")
    if labels.shape != (logits.shape[0],):
        raise ValueError(f"labels must have shape ({logits.shape[0]},), got {tuple(labels.shape)}")
    ce = F.cross_entropy(logits.float(), labels)
    if lambd == 0:
        return ce
    all_labels = gathered(labels)[0]  # under torchrun the contrastive term sees the global batch
    counts = torch.bincount(all_labels)[all_labels]
    anchors = int((counts > 1).sum())
    if anchors == 0:
        return (1 - lambd) * ce
    contrastive = supcon_loss(gathered(embeddings)[0], all_labels, temperature)
    return (1 - lambd) * ce + lambd * (contrastive * anchors if reduction == "sum" else contrastive)


def flip_labels(labels: Sequence[int], fraction: float, n_classes: int, seed: int = 0) -> list[int]:
    """Label noise: ``round(fraction * n)`` labels, chosen at random, replaced by another class at random."""
    if not 0 <= fraction <= 1:
        raise ValueError(f"fraction must lie in [0, 1], got {fraction}")
    rng = np.random.default_rng(seed)
    noisy = list(labels)
    for i in rng.choice(len(noisy), size=round(fraction * len(noisy)), replace=False):
        noisy[i] = int((noisy[i] + rng.integers(1, n_classes)) % n_classes)
    return noisy


class SCLFineTune(nn.Module):
    """SCL fine-tuning as a method: ``classifier`` trained with :func:`scl_objective` at
    ``lambd`` and ``temperature``; a batch is ``(sentences, labels)``. ``lambd = 0`` is plain
    cross-entropy fine-tuning."""

    def __init__(self, classifier: TextClassifier, lambd: float = 0.0, temperature: float = 0.3,
                 reduction: str = "mean") -> None:
        super().__init__()
        if not 0 <= lambd <= 1:
            raise ValueError(f"lambd must lie in [0, 1], got {lambd}")
        if reduction not in ("mean", "sum"):
            raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
        self.classifier, self.lambd, self.temperature, self.reduction = classifier, lambd, temperature, reduction

    def loss(self, sentences: list[str], labels: Tensor) -> Tensor:
        logits, h = self.classifier(sentences)
        return scl_objective(logits, h, labels.to(logits.device), self.lambd, self.temperature, self.reduction)


def train_classifier(
    classifier: TextClassifier,
    texts: Sequence[str],
    labels: Sequence[int],
    *,
    lambd: float = 0.0,
    temperature: float = 0.3,
    reduction: str = "mean",
    epochs: int,
    batch_size: int = 16,
    lr: float = 2e-5,
    seed: int = 0,
    device: torch.device | str = "cpu",
    progress: bool | None = None,
    method: nn.Module | None = None,
) -> History:
    """Fine-tune ``classifier`` (all weights) with :class:`SCLFineTune`; AdamW, shuffled batches
    (the last one of an epoch may be smaller).

    ``reduction``: how the contrastive term sums over anchors (:func:`scl_objective`).
    ``method``, when given, is trained instead (a method on ``classifier`` whose
    ``loss(sentences, labels)`` is the batch loss, e.g.
    :class:`~contrastive_tutorial.methods.adversarial.SCAL`); ``lambd`` must then stay 0.
    """
    if method is not None and lambd:
        raise ValueError(f"lambd applies to SCLFineTune only; got lambd={lambd} with a method")
    if len(texts) != len(labels):
        raise ValueError(f"texts and labels must have the same length, got {len(texts)} and {len(labels)}")
    if min(labels) < 0 or max(labels) >= classifier.n_classes:
        raise ValueError(f"labels must lie in [0, {classifier.n_classes}), got {min(labels)}..{max(labels)}")
    generator = seed_everything(seed)
    y = torch.as_tensor(list(labels))
    batches = Batches(len(texts), batch_size, generator=generator, drop_last=False,
                      collate=lambda idx: ([texts[i] for i in idx], y[idx]))
    method = method if method is not None else SCLFineTune(classifier, lambd, temperature, reduction)
    classifier.to(device).train()
    optimizer = adam(classifier.parameters(), lr=lr, weight_decay=0.01)
    return train(method, batches, optimizer, epochs=epochs, device=device, progress=progress,
                 desc=type(method).__name__)


def fine_tune(
    base: TextEncoder,
    task: LabelledText,
    shots: int | None,
    seed: int,
    *,
    noise: float = 0.0,
    trainer: Callable[..., History] = train_classifier,
    **train_kwargs,
) -> TextClassifier:
    """One run of a fine-tuning experiment: a copy of ``base`` with a fresh head (seeded), trained
    by ``trainer`` (:func:`train_classifier` or :func:`~contrastive_tutorial.methods.adversarial.train_scal`)
    on ``shots`` examples per class of ``task`` drawn with ``seed`` (all of them with ``None``),
    a fraction ``noise`` of their labels flipped. ``base`` is left unchanged."""
    idx = range(len(task.train_texts)) if shots is None else few_shot_indices(task.train_labels, shots, seed)
    texts, labels = [task.train_texts[i] for i in idx], [task.train_labels[i] for i in idx]
    n_classes = len(task.class_names)
    if noise:
        labels = flip_labels(labels, noise, n_classes, seed)
    torch.manual_seed(seed)
    classifier = TextClassifier(copy.deepcopy(base), n_classes)
    trainer(classifier, texts, labels, seed=seed, **train_kwargs)
    return classifier


@torch.no_grad()
def predict(classifier: TextClassifier, texts: Sequence[str], batch_size: int = 128) -> np.ndarray:
    """The predicted class of each text (evaluation mode): what :func:`contrastive_tutorial.stats.compare` resamples."""
    if isinstance(texts, str):
        raise TypeError("texts must be a sequence of strings, got one string")
    batch_size = checks.count(batch_size, "batch_size")
    out = []
    with eval_mode(classifier):
        for start in range(0, len(texts), batch_size):
            logits, _ = classifier(list(texts[start : start + batch_size]))
            out.append(logits.argmax(1).cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def accuracy(classifier: TextClassifier, texts: Sequence[str], labels: Sequence[int], batch_size: int = 128) -> float:
    """Fraction of ``texts`` whose predicted class is the label (evaluation mode)."""
    if len(texts) != len(labels) or len(texts) == 0:
        raise ValueError(f"texts and labels must be non-empty and of one length, got {len(texts)} and {len(labels)}")
    return float(np.mean(predict(classifier, texts, batch_size) == np.asarray(list(labels))))
