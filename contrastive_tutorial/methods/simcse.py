"""SimCSE and two of its relatives, DeCLUTR and contrastive tension, on one text encoder.

- Unsupervised SimCSE: a batch of sentences goes through the encoder twice (in one forward
  pass of the doubled batch); dropout makes the two vectors of a sentence differ, and each
  must pick its partner among the batch (:func:`~contrastive_tutorial.losses.simcse_loss`).
- Supervised SimCSE: (premise, entailment, contradiction) triples; the entailment is the
  positive and every contradiction of the batch an extra (hard) negative.
- DeCLUTR: anchor and positive are two spans of the same document (:func:`declutr_pairs`).
- Contrastive tension: two independent copies of the encoder; dot product and binary
  cross-entropy on pairs that are the same sentence or two random ones.

Taught in the chapter "SimCSE".
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from .. import checks
from ..encoders import TextEncoder
from ..evaluate import _as_matrix, _distinct, spearman
from ..losses import alignment, contrastive_tension_loss, simcse_loss, uniformity
from ..scale import gathered, gathered_objects
from ..train import Batches, History, adam, linear_schedule, train
from ..views.text import declutr_pairs, declutr_spans, doubled

__all__ = [
    "duplicate_mask",
    "unsup_loss",
    "pair_loss",
    "SimCSE",
    "CachedSimCSE",
    "auto_chunk_size",
    "sts_dev_evaluator",
    "train_simcse",
    "declutr_spans",
    "declutr_pairs",
    "contrastive_tension_batches",
    "ContrastiveTension",
    "train_contrastive_tension",
]

Batch = list[str] | dict[str, list[str]]


def duplicate_mask(sentences: Sequence[str]) -> Tensor:
    """``(N, N)`` boolean, ``True`` where ``j != i`` and ``sentences[j] == sentences[i]``.

    In unsupervised SimCSE a sentence that occurs twice in a batch is its own false
    negative: the loss pushes apart two views of the same text. Passing this mask as
    ``simcse_loss(..., exclude=mask)`` leaves such keys out of the denominator.
    """
    ids = {s: k for k, s in enumerate(dict.fromkeys(sentences))}
    labels = torch.tensor([ids[s] for s in sentences])
    same = labels[:, None] == labels[None, :]
    return same & ~torch.eye(len(sentences), dtype=torch.bool)


def unsup_loss(encoder: TextEncoder, sentences: Sequence[str], temperature: float, mask_duplicates: bool = False) -> Tensor:
    """Unsupervised SimCSE on one batch: two dropout views from one pass over the doubled batch."""
    batch = encoder.tokenize(sentences)
    z1, z2 = gathered(*encoder(doubled(batch)).chunk(2))  # under torchrun: the global batch
    exclude = duplicate_mask(gathered_objects(list(sentences))) if mask_duplicates else None
    return simcse_loss(z1, z2, temperature, exclude=exclude)


def pair_loss(encoder: TextEncoder, batch: dict[str, list[str]], temperature: float) -> Tensor:
    """Supervised SimCSE (and DeCLUTR) on one batch of ``anchor``/``positive`` (and optional ``negative``) texts."""
    columns = ["anchor", "positive"] + (["negative"] if "negative" in batch else [])
    texts = [text for column in columns for text in batch[column]]
    parts = gathered(*encoder(texts).chunk(len(columns)))
    hard = parts[2] if len(parts) == 3 else None
    return simcse_loss(parts[0], parts[1], temperature, hard_negatives=hard)


def sts_dev_evaluator(
    sentence1: Sequence[str],
    sentence2: Sequence[str],
    scores: Sequence[float],
    pooler: str | None = "cls_before_pooler",
    positive_threshold: float | None = None,
) -> Callable[[TextEncoder], dict[str, float]]:
    """An ``evaluate(encoder)`` for :func:`~contrastive_tutorial.train.fit` on an STS dev set.

    Returns ``dev_spearman`` (x 100), ``alignment`` over the pairs whose gold score is at
    least ``positive_threshold`` (SimCSE uses STS-B pairs above 4 of 5; default: the top
    fifth of the scores) and ``uniformity`` over all dev sentences, on normalised vectors.
    ``pooler=None`` calls ``encoder.encode(sentences)`` alone, for encoders without poolers
    (e.g. PromptBERT's ``PromptEncoder``).
    """
    scores_np = np.asarray(scores, dtype=np.float64)
    if not len(sentence1) == len(sentence2) == len(scores_np):
        raise ValueError("sentence1, sentence2 and scores must have the same length")
    threshold = float(np.quantile(scores_np, 0.8)) if positive_threshold is None else positive_threshold
    positives = torch.from_numpy(scores_np >= threshold)
    if positives.sum() < 2:
        raise ValueError(f"fewer than 2 dev pairs score >= {threshold}; lower positive_threshold")
    unique, index = _distinct([*sentence1, *sentence2])
    left = torch.tensor([index[s] for s in sentence1])
    right = torch.tensor([index[s] for s in sentence2])

    def evaluate(encoder: TextEncoder) -> dict[str, float]:
        out = encoder.encode(unique) if pooler is None else encoder.encode(unique, pooler=pooler)
        vectors = _as_matrix(out, len(unique))
        a, b = vectors[left], vectors[right]
        return {
            "dev_spearman": 100 * spearman((a * b).sum(1).numpy(), scores_np),
            "alignment": float(alignment(a[positives], b[positives])),
            "uniformity": float(uniformity(vectors)),
        }

    return evaluate


class SimCSE(nn.Module):
    """SimCSE as a method: ``encoder``, ``temperature`` and the batch loss.

    ``loss(batch)``: a list of sentences is unsupervised SimCSE (:func:`unsup_loss`, two
    dropout views; ``mask_duplicates`` leaves a repeated sentence out of its own denominator);
    a dict with ``anchor``, ``positive`` (and ``negative``) lists is supervised SimCSE or
    DeCLUTR (:func:`pair_loss`).
    """

    def __init__(self, encoder: TextEncoder, temperature: float = 0.05, mask_duplicates: bool = False) -> None:
        super().__init__()
        self.encoder, self.temperature, self.mask_duplicates = encoder, temperature, mask_duplicates

    def loss(self, batch: Batch) -> Tensor:
        if isinstance(batch, dict):
            return pair_loss(self.encoder, batch, self.temperature)
        return unsup_loss(self.encoder, batch, self.temperature, self.mask_duplicates)


class CachedSimCSE(SimCSE):
    """:class:`SimCSE` whose supervised batches backpropagate through gradient caching
    (:func:`~contrastive_tutorial.scale.cached_backward`): each column is encoded
    ``chunk_size`` sentences at a time, so a batch of 512 triples fits a 16 GB GPU, with the
    gradients of the full batch. ``backward(batch, scale)`` backpropagates ``scale`` times the
    loss itself and returns the loss, detached (:func:`~contrastive_tutorial.train.train`)."""

    def __init__(self, encoder: TextEncoder, temperature: float = 0.05, mask_duplicates: bool = False,
                 chunk_size: int = 128) -> None:
        super().__init__(encoder, temperature, mask_duplicates)
        chunk_size = checks.count(chunk_size, "chunk_size")
        self.chunk_size = chunk_size

    def backward(self, batch: Batch, scale: float = 1.0) -> Tensor:
        if not isinstance(batch, dict):  # unsupervised batches: the plain loss
            loss = self.loss(batch)
            (scale * loss).backward()
            return loss.detach()
        from ..scale import cached_backward

        columns = [batch[c] for c in ("anchor", "positive", "negative") if c in batch]

        def loss_of(*parts: Tensor) -> Tensor:
            hard = parts[2] if len(parts) == 3 else None
            return scale * simcse_loss(parts[0], parts[1], self.temperature, hard_negatives=hard)

        loss = cached_backward(self.encoder, [self.encoder.tokenize(c) for c in columns], loss_of, self.chunk_size)
        return loss / scale


def auto_chunk_size(device: torch.device | str, batch_size: int, chunk: int = 128, memory_gib: float = 24.0) -> int | None:
    """Gradient caching only where memory is short: ``chunk`` on a CUDA GPU with less than
    ``memory_gib`` GiB (a T4 or V100 has 16) when the batch is larger than ``chunk``, else ``None``.
    Supervised SimCSE's 512 triples of BERT-base at 32 tokens need more than 16 GB in one pass."""
    device = torch.device(device)
    if device.type != "cuda" or batch_size <= chunk:
        return None
    total = torch.cuda.get_device_properties(device).total_memory / 2**30
    return chunk if total < memory_gib else None


def _text_batches(data: list[str] | dict[str, list[str]], batch_size: int, seed: int,
                  keys: Sequence[str] | None = None) -> Batches:
    """Shuffled full batches of sentences, or of rows of a dict of columns (the loss needs negatives)."""
    if isinstance(data, dict):
        n = len(data["anchor"])
        collate = lambda idx: {k: [v[i] for i in idx] for k, v in data.items()}  # noqa: E731
    else:
        n = len(data)
        collate = lambda idx: [data[i] for i in idx]  # noqa: E731
    return Batches(n, batch_size, seed=seed, keys=keys, collate=collate)


def train_simcse(
    encoder: TextEncoder,
    data: Sequence[str] | dict[str, Sequence[str]],
    *,
    batch_size: int = 64,
    lr: float = 3e-5,
    temperature: float = 0.05,
    epochs: int = 1,
    max_steps: int | None = None,
    mask_duplicates: bool = False,
    no_duplicates: bool = False,
    chunk_size: int | str | None = None,
    clip_grad_norm: float | None = None,
    evaluate: Callable[[TextEncoder], dict[str, float]] | None = None,
    eval_every: int | None = None,
    seed: int = 0,
    amp: bool | str | None = None,
    progress: bool | None = None,
    checkpoint: str | None = None,
    method: nn.Module | None = None,
) -> History:
    """Train ``encoder`` with SimCSE's loss; return the history.

    ``data`` is a list of sentences (unsupervised SimCSE: dropout makes the views) or a
    mapping with ``anchor`` and ``positive`` lists and optionally ``negative`` (supervised
    SimCSE with hard negatives; also DeCLUTR's span pairs). AdamW with a learning rate that
    decays linearly to zero and no warm-up, as the official code (Hugging Face's Trainer
    defaults; its default gradient clipping at norm 1.0 is ``clip_grad_norm=1.0``). With
    ``evaluate`` (e.g. :func:`sts_dev_evaluator`) the model is evaluated every ``eval_every``
    steps and the best ``dev_spearman`` checkpoint is restored. ``max_steps`` caps the number
    of steps (the quick profile's short runs). ``no_duplicates`` draws batches in which no
    sentence (no anchor) occurs twice; ``chunk_size`` turns on gradient caching
    (:class:`CachedSimCSE`), ``"auto"`` where the GPU's memory is short (:func:`auto_chunk_size`).
    ``method`` replaces :class:`SimCSE` (e.g. USCAL's,
    :class:`~contrastive_tutorial.methods.adversarial.USCAL`) with the same schedule; it owns
    its temperature. ``checkpoint``: see :func:`~contrastive_tutorial.train.train`.
    """
    if chunk_size == "auto":
        chunk_size = auto_chunk_size(next(encoder.parameters()).device, batch_size)
    if method is not None and (isinstance(data, dict) or mask_duplicates or chunk_size):
        raise ValueError("method replaces SimCSE: data must be a list of sentences, without mask_duplicates or chunk_size")
    if isinstance(data, dict):
        if not {"anchor", "positive"} <= set(data):
            raise ValueError(f"data must have 'anchor' and 'positive' columns, got {sorted(data)}")
        data = {k: list(data[k]) for k in ("anchor", "positive", "negative") if k in data}
        lengths = {len(v) for v in data.values()}
        if len(lengths) != 1:
            raise ValueError(f"data columns must have the same length, got {lengths}")
        if mask_duplicates:
            raise ValueError("mask_duplicates applies to unsupervised data (a list of sentences)")
    else:
        data = list(data)
    if max_steps is not None and max_steps < 1:
        raise ValueError(f"max_steps must be >= 1, got {max_steps}")
    keys = (data["anchor"] if isinstance(data, dict) else data) if no_duplicates else None
    batches = _text_batches(data, batch_size, seed, keys)
    total = epochs * len(batches) if max_steps is None else min(epochs * len(batches), max_steps)
    torch.manual_seed(seed)  # the dropout masks
    if method is None:
        method = (CachedSimCSE(encoder, temperature, mask_duplicates, chunk_size) if chunk_size
                  else SimCSE(encoder, temperature, mask_duplicates))
    optimizer = adam(encoder.parameters(), lr=lr)
    return train(
        method,
        batches,
        optimizer,
        epochs=epochs,
        steps=max_steps,
        scheduler=linear_schedule(optimizer, total),
        amp=amp,
        clip_grad_norm=clip_grad_norm,
        evaluate=(lambda: evaluate(encoder)) if evaluate is not None else None,
        eval_every=eval_every,
        keep="best:dev_spearman" if evaluate is not None else "last",
        checkpoint=checkpoint,
        progress=progress,
        desc=type(method).__name__,
    )


# --------------------------------------------------------------------------- DeCLUTR
# --------------------------------------------------------------------------- contrastive tension
def contrastive_tension_batches(
    sentences: Sequence[str], batch_size: int = 16, negatives_per_positive: int = 7, seed: int = 0
) -> Batches:
    """Batches of ``(first, second, labels)``: each group of ``1 + negatives_per_positive`` pairs
    holds one positive (a sentence with itself, label 1) and random different sentences (label 0)."""
    group = negatives_per_positive + 1
    if batch_size % group:
        raise ValueError(f"batch_size ({batch_size}) must be a multiple of negatives_per_positive + 1 ({group})")
    if len(sentences) < 2:
        raise ValueError("contrastive tension needs at least 2 sentences")
    sentences = list(sentences)

    def collate(idx: list[int]) -> tuple[list[str], list[str], Tensor]:
        first, second, labels = [], [], []
        for k, i in enumerate(idx):
            first.append(sentences[i])
            if k % group == 0:
                second.append(sentences[i])
                labels.append(1.0)
            else:
                j = int(batches.generator.integers(len(sentences) - 1))
                second.append(sentences[j + (j >= i)])  # any sentence but i
                labels.append(0.0)
        return first, second, torch.tensor(labels)

    batches = Batches(len(sentences), batch_size, seed=seed, collate=collate)
    return batches


class ContrastiveTension(nn.Module):
    """Two independently updated copies of a text encoder (Carlsson et al., 2021).

    ``second`` is the encoder passed in and the one kept after training; ``first`` starts as
    a copy of it. Each encodes its side of a pair; their dot product is the logit.
    """

    def __init__(self, encoder: TextEncoder) -> None:
        super().__init__()
        self.second = encoder
        self.first = copy.deepcopy(encoder)

    def loss(self, first: list[str], second: list[str], labels: Tensor) -> Tensor:
        return contrastive_tension_loss(self.first(first), self.second(second), labels)


def train_contrastive_tension(
    encoder: TextEncoder,
    sentences: Sequence[str],
    *,
    batch_size: int = 16,
    negatives_per_positive: int = 7,
    lr: float = 1e-5,
    max_steps: int | None = None,
    evaluate: Callable[[TextEncoder], dict[str, float]] | None = None,
    eval_every: int | None = None,
    seed: int = 0,
    progress: bool | None = None,
) -> History:
    """Contrastive tension on unlabelled sentences; ``encoder`` is trained in place.

    ``evaluate`` receives ``encoder`` (the kept copy). The optimiser is AdamW with a
    constant learning rate.
    """
    model = ContrastiveTension(encoder)
    batches = contrastive_tension_batches(sentences, batch_size, negatives_per_positive, seed)
    torch.manual_seed(seed)
    optimizer = adam(model.parameters(), lr=lr)
    return train(
        model,
        batches,
        optimizer,
        epochs=1,
        steps=max_steps,
        evaluate=(lambda: evaluate(encoder)) if evaluate is not None else None,
        eval_every=eval_every,
        progress=progress,
        desc="contrastive tension",
    )
