r"""SCCL: Supporting Clustering with Contrastive Learning (Zhang et al., NAACL 2021).

A sentence encoder, two heads and a joint objective:

- the **instance-CL head** :math:`g` (Linear-ReLU-Linear to 128 dimensions) and NT-Xent
  (:func:`~contrastive_tutorial.losses.nt_xent`, :math:`\tau = 0.5`) over two augmented
  views of each text: :math:`\mathcal{L}_I`;
- the **clustering head**, :math:`K` learnable centres :math:`\mu_k` initialised by k-means
  on the starting embeddings, Student's t soft assignments and the KL divergence to their
  sharpened target (:func:`~contrastive_tutorial.losses.cluster_kl_loss`): :math:`\mathcal{L}_C`
  on the embeddings of the original texts;
- :math:`\mathcal{L} = \mathcal{L}_C + \eta\, \mathcal{L}_I` with :math:`\eta = 10`.

Where the paper is silent this module follows the official code (amazon-science/sccl), and
says so: the target distribution is recomputed from each batch and detached; the heads
learn ``lr_scale = 100`` times faster than the encoder (Adam); the embedding is the mean of
the last hidden states; accuracy is read from k-means on the final embeddings, and from the
head's argmax. In the official "virtual" mode (dropout makes the two views, no augmented
text) the clustering term is weighted 0.5, in the "explicit" mode 1.

Taught in the chapter "SCCL: clustering with contrastive learning".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from ..encoders import TextEncoder
from ..evaluate import clustering_accuracy, kmeans, nmi
from ..losses import cluster_kl_loss, nt_xent, student_t_assignment
from ..scale import gathered
from ..train import Batches, History, adam, train
from ..views.text import contextual_substitution, word_deletion

__all__ = [
    "OBJECTIVES",
    "SCCL",
    "SCCLObjective",
    "word_deletion",
    "contextual_substitution",
    "cluster_assignments", "evaluate_clustering",
    "train_sccl",
]

OBJECTIVES = ("sccl", "instance", "clustering")


class SCCL(nn.Module):
    """A :class:`TextEncoder` (mean pooling) with SCCL's instance-CL head and cluster centres.

    Args:
        encoder: the sentence encoder; its ``mean`` pooler gives the embedding :math:`e`.
        centres: ``(K, D)`` starting centres, e.g. from :meth:`from_kmeans`.
        alpha: Student's t degrees of freedom (1).
        projection_dim: output size of the instance-CL head (128).
    """

    def __init__(self, encoder: TextEncoder, centres: Tensor | np.ndarray, alpha: float = 1.0, projection_dim: int = 128):
        super().__init__()
        centres = torch.as_tensor(np.asarray(centres), dtype=torch.float32)
        hidden = encoder.model.config.hidden_size
        if centres.dim() != 2 or centres.shape[1] != hidden:
            raise ValueError(f"centres must have shape (K, {hidden}), got {tuple(centres.shape)}")
        if len(centres) < 2:
            raise ValueError(f"centres must hold at least 2 clusters, got {len(centres)}")
        self.encoder, self.alpha = encoder, alpha
        self.head = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, projection_dim))
        self.centres = nn.Parameter(centres.to(encoder.device))
        self.head.to(encoder.device)

    @classmethod
    def from_kmeans(cls, encoder: TextEncoder, texts: Sequence[str], n_clusters: int, seed: int = 0, **kwargs) -> "SCCL":
        """Initialise the centres by k-means on the encoder's starting embeddings of ``texts``."""
        _, centres = kmeans(encoder.encode(texts, pooler="mean"), n_clusters, seed=seed)
        return cls(encoder, centres, **kwargs)

    @property
    def n_clusters(self) -> int:
        return len(self.centres)

    def embed(self, texts: Sequence[str]) -> Tensor:
        """``(B, D)`` embeddings :math:`e` (mean of the last hidden states), with gradients."""
        return self.encoder(texts, pooler="mean")

    def assign(self, embeddings: Tensor) -> Tensor:
        """``(B, K)`` Student's t soft assignments of ``embeddings`` to the centres."""
        return student_t_assignment(embeddings, self.centres, self.alpha)

    def losses(
        self,
        texts: Sequence[str],
        views: tuple[Sequence[str], Sequence[str]] | None = None,
        objective: str = "sccl",
        eta: float = 10.0,
        temperature: float = 0.5,
    ) -> dict[str, Tensor]:
        """The terms of SCCL's objective on one batch: ``{"loss", "instance", "cluster"}``.

        ``views=None`` is the "virtual" mode: two dropout passes over ``texts`` are the two
        views, and the first also feeds the clustering head (weight 0.5 on
        :math:`\\mathcal{L}_C`). With explicit ``views`` (two augmented copies of ``texts``)
        the original texts feed the clustering head and :math:`\\mathcal{L} = \\mathcal{L}_C
        + \\eta \\mathcal{L}_I`. ``objective`` selects both terms (``"sccl"``) or one of them
        (``"instance"``, ``"clustering"``), the paper's ablation.
        """
        if objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
        texts = list(texts)
        n = len(texts)
        if objective == "clustering":  # no views needed: only the original texts are encoded
            batch, cluster_weight = texts, 0.5 if views is None else 1.0
        elif views is None:
            batch, cluster_weight = texts + texts, 0.5
        else:
            if len(views) != 2 or any(len(v) != n for v in views):
                raise ValueError(f"views must be two lists of {n} texts, one per text")
            batch, cluster_weight = texts + list(views[0]) + list(views[1]), 1.0
        embeddings = self.embed(batch)  # one forward pass over every text of the step
        first, second = (embeddings[:n], embeddings[n:]) if views is None else (embeddings[n : 2 * n], embeddings[2 * n :])
        out: dict[str, Tensor] = {}
        loss = embeddings.new_zeros(())
        if objective in ("sccl", "instance"):
            out["instance"] = nt_xent(*gathered(self.head(first), self.head(second)), temperature)
            loss = loss + eta * out["instance"]
        if objective in ("sccl", "clustering"):
            out["cluster"] = cluster_kl_loss(*gathered(self.assign(embeddings[:n])))  # target from the global batch
            loss = loss + cluster_weight * out["cluster"]
        out["loss"] = loss
        return out

    @torch.no_grad()
    def predict(self, texts: Sequence[str], batch_size: int = 128) -> tuple[Tensor, Tensor]:
        """Eval-mode embeddings ``(N, D)`` and head assignments ``(N, K)`` on the CPU."""
        embeddings = self.encoder.encode(texts, pooler="mean", batch_size=batch_size)
        q = self.assign(embeddings.to(self.centres.device))
        return embeddings, q.cpu()


# --------------------------------------------------------------------------- augmentation
# word_deletion and contextual_substitution live in contrastive_tutorial.views.text.


# --------------------------------------------------------------------------- evaluation
def cluster_assignments(model: SCCL, texts: Sequence[str], seed: int = 0) -> dict[str, np.ndarray]:
    """Each text's cluster: ``"kmeans"``, k-means on the embeddings (``K = model.n_clusters``,
    ``random_state=seed``, as the official code reports its main numbers), and ``"head"``, the
    head's argmax. Per-item assignments are what :func:`contrastive_tutorial.stats.compare` resamples."""
    if isinstance(texts, str) or len(texts) == 0:
        raise ValueError("texts must be a non-empty sequence of strings")
    embeddings, q = model.predict(texts)
    from_kmeans, _ = kmeans(embeddings, model.n_clusters, seed=seed)
    return {"kmeans": np.asarray(from_kmeans), "head": q.argmax(1).numpy()}


def evaluate_clustering(model: SCCL, texts: Sequence[str], labels: Sequence[int], seed: int = 0) -> dict[str, float]:
    """Accuracy (Hungarian matching) and NMI of k-means on the embeddings and of the head's argmax
    (:func:`cluster_assignments`)."""
    labels = np.asarray(labels)
    if len(labels) != len(texts):
        raise ValueError(f"labels must have one entry per text ({len(texts)}), got {len(labels)}")
    found = cluster_assignments(model, texts, seed)
    return {
        "kmeans_acc": clustering_accuracy(labels, found["kmeans"]),
        "kmeans_nmi": nmi(labels, found["kmeans"]),
        "head_acc": clustering_accuracy(labels, found["head"]),
        "head_nmi": nmi(labels, found["head"]),
    }


# --------------------------------------------------------------------------- training
class SCCLObjective(nn.Module):
    r"""SCCL's training objective as a method: ``model`` (an :class:`SCCL`), the ``texts`` it
    clusters, their optional explicit ``views``, ``objective``, :math:`\eta` and the
    temperature; a batch is a list of indices into ``texts``."""

    def __init__(self, model: SCCL, texts: Sequence[str], views: tuple[Sequence[str], Sequence[str]] | None = None,
                 objective: str = "sccl", eta: float = 10.0, temperature: float = 0.5) -> None:
        super().__init__()
        if objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
        self.model, self.texts = model, list(texts)
        self.views = None if views is None else (list(views[0]), list(views[1]))
        self.objective, self.eta, self.temperature = objective, eta, temperature
        if self.views is not None and any(len(v) != len(self.texts) for v in self.views):
            raise ValueError(f"views must be two lists of {len(self.texts)} texts, one per text")

    def loss(self, idx: list[int]) -> Tensor:
        pair = None if self.views is None else ([self.views[0][i] for i in idx], [self.views[1][i] for i in idx])
        return self.model.losses([self.texts[i] for i in idx], pair, self.objective, self.eta, self.temperature)["loss"]


def train_sccl(
    model: SCCL,
    texts: Sequence[str],
    *,
    views: tuple[Sequence[str], Sequence[str]] | None = None,
    objective: str = "sccl",
    steps: int = 1000,
    batch_size: int = 400,
    lr: float = 1e-5,
    lr_scale: float = 100.0,
    eta: float = 10.0,
    temperature: float = 0.5,
    evaluate: Callable[[SCCL], dict[str, float]] | None = None,
    eval_every: int | None = None,
    seed: int = 0,
    amp: bool | str | None = None,
    progress: bool | None = None,
    checkpoint: str | None = None,
) -> History:
    """Train ``model`` for ``steps`` batches of ``texts`` with the SCCL objective; return the history.

    Adam with the encoder at ``lr`` and both heads (instance-CL head and centres) at
    ``lr * lr_scale``, no schedule (the official code's defaults: batch 400, lr 1e-5,
    scale 100). ``views`` holds two augmented copies of ``texts`` (explicit mode); without
    it the views come from dropout (virtual mode). Batches are drawn without replacement
    and reshuffled after every pass. ``evaluate(model)`` is recorded every ``eval_every``
    steps and at the start.
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    method = SCCLObjective(model, texts, views, objective, eta, temperature)
    if not 2 <= batch_size <= len(method.texts):
        raise ValueError(f"batch_size must lie in [2, {len(method.texts)}], got {batch_size}")
    batches = Batches(len(method.texts), batch_size, seed=seed)
    torch.manual_seed(seed)  # dropout masks
    optimizer = adam(
        [
            {"params": model.encoder.model.parameters()},
            {"params": model.head.parameters(), "lr": lr * lr_scale},
            {"params": [model.centres], "lr": lr * lr_scale},
        ],
        lr=lr,
    )
    return train(method, batches, optimizer, steps=steps, amp=amp,
                 evaluate=(lambda: evaluate(model)) if evaluate is not None else None, eval_every=eval_every,
                 checkpoint=checkpoint, progress=progress, desc="SCCL")
