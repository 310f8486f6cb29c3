"""Adversarial contrastive learning (SCAL / USCAL, Miao et al., arXiv 2111.13301).

Word edits can change a sentence's meaning; a small perturbation :math:`\\delta` of the word
embeddings cannot change the words at all, and chosen against the model it makes a *hard*
positive. The perturbation solves the inner problem of adversarial training approximately,

.. math::
    \\delta^\\star = \\arg\\max_{\\lVert \\delta \\rVert_2 \\le \\epsilon} \\mathcal{L}(x_{emb} + \\delta),

with one normalised gradient step (FGM, :math:`\\delta = \\epsilon\\, g / \\lVert g \\rVert_2`,
norm per example over all its tokens and dimensions) or ``steps`` projected steps (PGD).
The perturbed embeddings enter the model through ``inputs_embeds`` (position and token-type
embeddings are added by the model as usual), so any ``transformers`` encoder works, and clean
and perturbed passes share all weights.

- SCAL (supervised): :math:`\\mathrm{CE}(x) + \\mathrm{CE}(x + \\delta) + \\mathcal{L}_{con}(h(x), h(x+\\delta))`
  with :math:`\\delta` from the label loss and :math:`\\mathcal{L}_{con}` InfoNCE between the clean
  and the perturbed [CLS] vectors of the batch at :math:`\\tau = 0.05`.
- USCAL (unsupervised): SimCSE's two dropout views :math:`x_1, x_2` of the clean sentence, and
  :math:`x_1 + \\delta` with :math:`\\delta` from SimCSE's loss :math:`\\mathcal{L}_{con}(h(x_1), h(x_2))`;
  the loss is :math:`\\mathcal{L}_{con}(h_1, h_2) + \\alpha\\,[\\mathcal{L}_{con}(h_1, h_\\delta) + \\mathcal{L}_{con}(h_2, h_\\delta)]`
  with a constant :math:`\\alpha < 1`.

Chapter "Adversarial contrastive learning".
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..encoders import TextEncoder
from ..losses import simcse_loss
from ..scale import gathered
from ..train import History, eval_mode
from ..views.text import adversarial_delta, normalise_per_example
from .scl import TextClassifier, train_classifier
from .simcse import train_simcse

__all__ = ["normalise_per_example", "adversarial_delta", "encode_embeddings", "adversarial_training_loss", "scal_loss", "uscal_loss",
           "SCAL", "USCAL", "train_scal", "train_uscal", "positive_cosines", "adversarial_predictions", "adversarial_accuracy"]


def encode_embeddings(encoder: TextEncoder, embeddings: Tensor, attention_mask: Tensor) -> Tensor:
    """``encoder``'s sentence vectors for given word embeddings (``inputs_embeds``), with its pooler."""
    outputs = encoder.model(inputs_embeds=embeddings, attention_mask=attention_mask,
                            output_hidden_states=encoder.pooler == "first_last_avg")
    return encoder.pool(outputs, attention_mask)


def _word_embeddings(encoder: TextEncoder, batch: dict[str, Tensor]) -> Tensor:
    return encoder.model.get_input_embeddings()(batch["input_ids"])


def _label_delta(classifier: TextClassifier, batch: dict[str, Tensor], words: Tensor, labels: Tensor,
                 epsilon: float, steps: int) -> Tensor:
    """A perturbation of the word embeddings ``words`` within ``epsilon`` that raises the label loss
    (cross-entropy against ``labels``): what SCAL trains on and what the robustness test attacks with."""
    def label_loss(perturbed: Tensor) -> Tensor:
        h = encode_embeddings(classifier.encoder, perturbed, batch["attention_mask"])
        return F.cross_entropy(classifier.head(h).float(), labels)

    return adversarial_delta(label_loss, words, epsilon, steps)


def _clean_and_perturbed(classifier: TextClassifier, sentences: Sequence[str], labels: Tensor, epsilon: float,
                         steps: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``CE(x), CE(x + delta), h(x), h(x + delta)`` for one batch, ``delta`` maximising the label loss."""
    encoder = classifier.encoder
    batch = encoder.tokenize(sentences)
    labels = labels.to(batch["input_ids"].device)
    words = _word_embeddings(encoder, batch)
    h_clean = encode_embeddings(encoder, words, batch["attention_mask"])
    ce_clean = F.cross_entropy(classifier.head(h_clean).float(), labels)
    delta = _label_delta(classifier, batch, words, labels, epsilon, steps)
    h_adv = encode_embeddings(encoder, words + delta, batch["attention_mask"])
    ce_adv = F.cross_entropy(classifier.head(h_adv).float(), labels)
    return ce_clean, ce_adv, h_clean, h_adv


def adversarial_training_loss(
    classifier: TextClassifier, sentences: Sequence[str], labels: Tensor, epsilon: float, steps: int = 1
) -> Tensor:
    """Plain adversarial training on one batch: CE(clean) + CE(perturbed), no contrastive term
    (Goodfellow et al.'s recipe on word embeddings; the baseline SCAL adds its InfoNCE term to)."""
    ce_clean, ce_adv, _, _ = _clean_and_perturbed(classifier, sentences, labels, epsilon, steps)
    return ce_clean + ce_adv


def scal_loss(
    classifier: TextClassifier,
    sentences: Sequence[str],
    labels: Tensor,
    epsilon: float,
    temperature: float = 0.05,
    steps: int = 1,
) -> Tensor:
    """SCAL on one batch: CE(clean) + CE(perturbed) + InfoNCE(clean [CLS], perturbed [CLS]).

    The perturbation maximises the label loss (cross-entropy) within ``epsilon``.
    """
    ce_clean, ce_adv, h_clean, h_adv = _clean_and_perturbed(classifier, sentences, labels, epsilon, steps)
    return ce_clean + ce_adv + simcse_loss(*gathered(h_clean, h_adv), temperature)


def uscal_loss(
    encoder: TextEncoder,
    sentences: Sequence[str],
    epsilon: float,
    temperature: float = 0.05,
    alpha: float = 0.5,
    steps: int = 1,
) -> Tensor:
    """USCAL on one batch of unlabelled sentences (module docstring): SimCSE's loss plus ``alpha``
    times the two contrastive losses against the adversarial view."""
    if not 0 <= alpha < 1:
        raise ValueError(f"alpha must lie in [0, 1), got {alpha}")
    h1, h2, h_adv = gathered(*_uscal_views(encoder, sentences, epsilon, temperature, steps))
    return simcse_loss(h1, h2, temperature) + alpha * (simcse_loss(h1, h_adv, temperature) + simcse_loss(h2, h_adv, temperature))


def _uscal_views(encoder: TextEncoder, sentences: Sequence[str], epsilon: float, temperature: float, steps: int):
    """Two dropout views ``h1, h2`` of each sentence and the adversarial view ``h(x + delta)``,
    ``delta`` raising SimCSE's loss between the perturbed view and ``h2``."""
    batch = encoder.tokenize(list(sentences))
    mask = batch["attention_mask"]
    words = _word_embeddings(encoder, batch)
    h1 = encode_embeddings(encoder, words, mask)
    h2 = encode_embeddings(encoder, words, mask)  # a second dropout mask: SimCSE's positive

    def contrastive(perturbed: Tensor) -> Tensor:
        return simcse_loss(encode_embeddings(encoder, perturbed, mask), h2.detach(), temperature)

    delta = adversarial_delta(contrastive, words, epsilon, steps)
    return h1, h2, encode_embeddings(encoder, words + delta, mask)


class SCAL(nn.Module):
    """SCAL as a method: ``classifier`` trained with :func:`scal_loss` (perturbation radius
    ``epsilon``, InfoNCE at ``temperature``, ``steps`` attack steps); a batch is
    ``(sentences, labels)``. ``contrastive=False`` drops the InfoNCE term: plain adversarial
    training (:func:`adversarial_training_loss`)."""

    def __init__(self, classifier: TextClassifier, epsilon: float, temperature: float = 0.05, steps: int = 1,
                 contrastive: bool = True) -> None:
        super().__init__()
        self.classifier, self.epsilon, self.temperature, self.steps = classifier, epsilon, temperature, steps
        self.contrastive = contrastive

    def loss(self, sentences: list[str], labels: Tensor) -> Tensor:
        if not self.contrastive:
            return adversarial_training_loss(self.classifier, sentences, labels, self.epsilon, self.steps)
        return scal_loss(self.classifier, sentences, labels, self.epsilon, self.temperature, self.steps)


class USCAL(nn.Module):
    """USCAL as a method: ``encoder`` trained with :func:`uscal_loss`; a batch is a list of
    sentences. It owns its temperature (SimCSE's 0.05 by default)."""

    def __init__(self, encoder: TextEncoder, epsilon: float, alpha: float = 0.5, temperature: float = 0.05,
                 steps: int = 1) -> None:
        super().__init__()
        if not 0 <= alpha < 1:
            raise ValueError(f"alpha must lie in [0, 1), got {alpha}")
        self.encoder, self.epsilon, self.alpha, self.temperature, self.steps = encoder, epsilon, alpha, temperature, steps

    def loss(self, sentences: list[str]) -> Tensor:
        return uscal_loss(self.encoder, sentences, self.epsilon, self.temperature, self.alpha, self.steps)


def train_scal(
    classifier: TextClassifier,
    texts: Sequence[str],
    labels: Sequence[int],
    *,
    epsilon: float,
    temperature: float = 0.05,
    steps: int = 1,
    contrastive: bool = True,
    **train_kwargs,
) -> History:
    """Fine-tune ``classifier`` with :class:`SCAL` (``contrastive=False``: plain adversarial training);
    ``train_kwargs`` go to :func:`~contrastive_tutorial.methods.scl.train_classifier` (epochs,
    batch_size, lr, seed, device)."""
    method = SCAL(classifier, epsilon, temperature, steps, contrastive)
    return train_classifier(classifier, texts, labels, method=method, **train_kwargs)


def train_uscal(
    encoder: TextEncoder,
    sentences: Sequence[str],
    *,
    epsilon: float,
    alpha: float = 0.5,
    temperature: float = 0.05,
    steps: int = 1,
    **train_kwargs,
) -> History:
    """Train ``encoder`` with :class:`USCAL`, on SimCSE's schedule; ``train_kwargs`` go to
    :func:`~contrastive_tutorial.methods.simcse.train_simcse` (batch_size, lr, max_steps, evaluate, ...)."""
    if "method" in train_kwargs:
        raise TypeError("train_uscal sets the method itself (USCAL, which owns the temperature)")
    return train_simcse(encoder, sentences, method=USCAL(encoder, epsilon, alpha, temperature, steps), **train_kwargs)


def positive_cosines(encoder: TextEncoder, sentences: Sequence[str], epsilon: float, temperature: float = 0.05) -> dict[str, float]:
    """How hard each kind of positive is: mean cosine between a sentence's dropout view :math:`h_2`
    and either its other dropout view :math:`h_1` (SimCSE's positive) or its adversarial view
    :math:`h(x+\\delta)` (USCAL's), :math:`\\delta` from the contrastive loss as in :func:`uscal_loss`.
    Dropout stays on (training mode), as during training; no weights change."""
    with eval_mode(encoder, training=True):
        h1, h2, h_adv = (h.detach() for h in _uscal_views(encoder, sentences, epsilon, temperature, steps=1))
    return {"dropout": F.cosine_similarity(h1, h2).mean().item(),
            "adversarial": F.cosine_similarity(h_adv, h2).mean().item()}


def adversarial_predictions(
    classifier: TextClassifier,
    texts: Sequence[str],
    labels: Sequence[int],
    epsilon: float,
    steps: int = 1,
    batch_size: int = 64,
) -> np.ndarray:
    """The class predicted for each sentence when its word embeddings are perturbed against its true
    label (FGM/PGD, ``epsilon``; ``epsilon = 0`` is the clean prediction). Per-item predictions are
    what :func:`contrastive_tutorial.stats.compare` resamples."""
    if len(texts) != len(labels) or len(texts) == 0:
        raise ValueError(f"texts and labels must be non-empty and of one length, got {len(texts)} and {len(labels)}")
    encoder, out = classifier.encoder, []
    with eval_mode(classifier):
        for start in range(0, len(texts), batch_size):
            batch = encoder.tokenize(list(texts[start : start + batch_size]))
            y = torch.as_tensor(list(labels[start : start + batch_size]), device=batch["input_ids"].device)
            words = _word_embeddings(encoder, batch).detach()
            delta = _label_delta(classifier, batch, words, y, epsilon, steps) if epsilon > 0 else torch.zeros_like(words)
            with torch.no_grad():
                logits = classifier.head(encode_embeddings(encoder, words + delta, batch["attention_mask"]))
            out.append(logits.argmax(1).cpu().numpy())
    return np.concatenate(out)


def adversarial_accuracy(
    classifier: TextClassifier,
    texts: Sequence[str],
    labels: Sequence[int],
    epsilon: float,
    steps: int = 1,
    batch_size: int = 64,
) -> float:
    """Accuracy when every sentence's word embeddings are perturbed against its true label (FGM/PGD, ``epsilon``)."""
    predictions = adversarial_predictions(classifier, texts, labels, epsilon, steps, batch_size)
    return float(np.mean(predictions == np.asarray(list(labels))))
