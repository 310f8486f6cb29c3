"""SimCLR on small images: encoder f, projector g, NT-Xent on two batched views; and the one
training loop, baselines and evaluation every image method of the book shares.

Chapter "SimCLR intuition" (and "InfoNCE and temperature" for its temperature sweep);
"Beyond negatives" trains its methods with :func:`train_views` and scores them with
:func:`evaluate_encoder`.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data import ImageData
from ..encoders import ProjectionHead, SmallCNN
from ..evaluate import effective_rank, embed, knn_predictions, linear_probe_predictions, normalised_std
from ..losses import alignment, nt_xent, uniformity
from ..profiles import seed_everything
from ..scale import gathered
from ..train import Batches, History, adam, train
from ..views import ImageViews

__all__ = [
    "SimCLR",
    "TwoViews",
    "image_batches",
    "train_views",
    "train_simclr",
    "Supervised",
    "train_supervised",
    "EncoderScores",
    "evaluate_encoder",
    "collapse_metrics",
]


class SimCLR(nn.Module):
    """Encoder ``f`` and projector ``g``: ``forward(x)`` returns the projection ``z = g(f(x))``.

    ``loss(x1, x2)`` is NT-Xent at ``temperature`` between the projections of two views, or
    ``criterion(z1, z2)`` where one is given (e.g. :func:`~contrastive_tutorial.losses.debiased_nt_xent`
    with its settings bound, chapter "InfoNCE and temperature"). With ``negatives=False`` it is the alignment term alone, :math:`\\lVert \\bar z_1 - \\bar z_2 \\rVert^2`
    on normalised projections: a loss with nothing that pushes images apart, which collapses.
    """

    def __init__(
        self,
        encoder: nn.Module,
        feature_dim: int,
        projection_dim: int = 128,
        temperature: float = 0.5,
        negatives: bool = True,
        hidden_dim: int | None = None,
        criterion: Callable[[Tensor, Tensor], Tensor] | None = None,
    ) -> None:
        super().__init__()
        if criterion is not None and not callable(criterion):
            raise TypeError(f"criterion must be a function of (z1, z2), got {type(criterion).__name__}")
        if criterion is not None and not negatives:
            raise ValueError("criterion replaces NT-Xent; negatives=False (the alignment term alone) takes none")
        self.encoder = encoder
        self.projector = ProjectionHead(feature_dim, hidden_dim, projection_dim)
        self.temperature, self.negatives, self.criterion = temperature, negatives, criterion

    def forward(self, x: Tensor) -> Tensor:
        return self.projector(self.encoder(x))

    def loss(self, x1: Tensor, x2: Tensor) -> Tensor:
        z = self(torch.cat([x1, x2]))  # one pass over both views: batch norm sees all 2N images
        z1, z2 = gathered(*z.chunk(2))  # under torchrun: every process's batch, for negatives
        if self.criterion is not None:
            return self.criterion(z1, z2)
        if self.negatives:
            return nt_xent(z1, z2, self.temperature)
        return alignment(F.normalize(z1.float(), dim=1), F.normalize(z2.float(), dim=1))


class TwoViews(nn.Module):
    """A two-view image method as :func:`~contrastive_tutorial.train.train` takes it: the loss of a
    batch of images is ``model.loss(views(x), views(x))``, two random views made on the batch's
    device; ``after_step`` is the model's (momentum encoders), where it has one. A method whose
    ``loss`` takes ``ids`` (MoCo's queue) also gets each image's index in the training set."""

    def __init__(self, model: nn.Module, views: ImageViews) -> None:
        super().__init__()
        self.model, self.views = model, views
        self.wants_ids = "ids" in inspect.signature(model.loss).parameters

    def loss(self, images: Tensor, ids: Tensor | None = None) -> Tensor:
        device = next(self.model.parameters()).device
        x = images.to(device)
        if self.wants_ids and ids is not None:
            return self.model.loss(self.views(x), self.views(x), ids=ids.to(device))
        return self.model.loss(self.views(x), self.views(x))

    def after_step(self) -> None:
        after = getattr(self.model, "after_step", None)
        if after is not None:
            after()


def image_batches(images: Tensor, batch_size: int, generator: torch.Generator) -> Batches:
    """Shuffled full batches ``(images, their indices)`` (the ragged last batch of an epoch is dropped)."""
    return Batches(len(images), min(batch_size, len(images)), generator=generator,
                   collate=lambda idx: (images[idx], torch.as_tensor(idx)))


def train_views(
    method: nn.Module,
    data: ImageData,
    views: ImageViews,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int = 0,
    weight_decay: float = 0.0,
    device: torch.device | str = "cpu",
    progress: bool | None = None,
    checkpoint: str | None = None,
    evaluate: Callable[[], dict[str, float]] | None = None,
    eval_every: int | None = None,
) -> History:
    """Train any two-view ``method`` on the training images (labels unused) with Adam.

    ``method.loss(x1, x2)`` gets two views of a batch made on ``device`` by ``views``
    (:class:`TwoViews`); ``method.after_step()``, where the method has one (momentum
    encoders), runs after every optimizer step. Batches are drawn without replacement with
    ``seed``; the ragged last batch of an epoch is dropped. ``checkpoint``, ``evaluate`` and
    ``eval_every`` (metrics recorded in the history during training, e.g.
    :func:`collapse_metrics`): see :func:`~contrastive_tutorial.train.train`.
    """
    generator = seed_everything(seed)
    batches = image_batches(data.train_images, batch_size, generator)
    method.to(device)
    optimizer = adam([p for p in method.parameters() if p.requires_grad], lr=lr, weight_decay=weight_decay, decoupled=False)
    return train(TwoViews(method, views), batches, optimizer, epochs=epochs, device=device, progress=progress,
                 generators=[g for g in (views.generator,) if g is not None], checkpoint=checkpoint, desc=type(method).__name__,
                 evaluate=evaluate, eval_every=eval_every)


def train_simclr(
    data: ImageData,
    temperature: float,
    *,
    epochs: int,
    batch_size: int,
    feature_dim: int,
    projection_dim: int,
    lr: float,
    seed: int = 0,
    views: ImageViews | None = None,
    encoder: nn.Module | None = None,
    negatives: bool = True,
    hidden_dim: int | None = None,
    criterion: Callable[[Tensor, Tensor], Tensor] | None = None,
    device: torch.device | str = "cpu",
    progress: bool | None = None,
    checkpoint: str | None = None,
) -> tuple[SimCLR, History]:
    """Train SimCLR (a :class:`SmallCNN` unless ``encoder`` is given) with NT-Xent at ``temperature``
    (or ``criterion(z1, z2)``, see :class:`SimCLR`).

    Returns the model (its ``encoder`` gives the representation ``h``) and the history.
    """
    generator = seed_everything(seed)
    views = views or ImageViews(generator=generator)
    encoder = encoder or SmallCNN(data.train_images.shape[1], feature_dim)
    model = SimCLR(encoder, feature_dim, projection_dim, temperature, negatives, hidden_dim, criterion)
    history = train_views(model, data, views, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed,
                          device=device, progress=progress, checkpoint=checkpoint)
    return model, history


class Supervised(nn.Module):
    """The supervised reference as a method: ``encoder`` + a linear layer, cross-entropy on one
    augmented view of each training image; a batch is a list of training indices."""

    def __init__(self, encoder: nn.Module, feature_dim: int, data: ImageData, views: ImageViews) -> None:
        super().__init__()
        self.encoder, self.head = encoder, nn.Linear(feature_dim, len(data.classes))
        self.data, self.views = data, views

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.encoder(x))

    def loss(self, idx: list[int]) -> Tensor:
        device = self.head.weight.device
        x = self.views(self.data.train_images[idx].to(device))
        return F.cross_entropy(self(x), self.data.train_labels[idx].long().to(device))

    def predict(self, images: Tensor) -> np.ndarray:
        """The class the network's own head predicts for each image (eval mode, no views)."""
        return embed(self, images).argmax(1).numpy()


def train_supervised(
    data: ImageData,
    encoder: nn.Module,
    feature_dim: int,
    views: ImageViews,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int = 0,
    device: torch.device | str = "cpu",
    progress: bool | None = None,
) -> Supervised:
    """The supervised reference: train ``encoder`` + a linear layer with cross-entropy on the
    training labels (one augmented view per image). Returns the :class:`Supervised` network: its
    ``encoder`` is the representation, ``predict`` its own classifier's answers."""
    generator = seed_everything(seed)
    model = Supervised(encoder, feature_dim, data, views).to(device)
    n = len(data.train_images)
    batches = Batches(n, min(batch_size, n), generator=generator)
    train(model, batches, adam(model.parameters(), lr=lr), epochs=epochs, device=device, progress=progress,
          desc="supervised")
    return model


@dataclass
class EncoderScores:
    """Downstream accuracy of the representation ``h`` and geometry of normalised embeddings.

    ``predictions`` holds each test image's predicted class under ``"linear_probe"`` and
    ``"knn"``: what :func:`contrastive_tutorial.stats.compare_runs` resamples.
    """

    linear_probe: float
    knn: float
    alignment: float
    uniformity: float
    predictions: dict[str, np.ndarray] = field(default_factory=dict, repr=False)


@torch.no_grad()
def evaluate_encoder(
    model: nn.Module,
    data: ImageData,
    views: ImageViews | None = None,
    seed: int = 0,
    space: str = "projection",
) -> EncoderScores:
    """Linear-probe and kNN test accuracy of ``h = f(x)`` (``model.encoder``), plus alignment of
    two views and uniformity of the L2-normalised ``space``: ``"projection"`` (``model(x)``,
    where the loss acts) or ``"representation"`` (``h``, comparable across methods)."""
    if space not in ("projection", "representation"):
        raise ValueError(f"space must be 'projection' or 'representation', got {space!r}")
    h_train, h_test = embed(model.encoder, data.train_images), embed(model.encoder, data.test_images)
    views = views or ImageViews(generator=torch.Generator().manual_seed(seed))
    net = model if space == "projection" else model.encoder
    first, second = views(data.test_images), views(data.test_images)
    z1, z2 = F.normalize(embed(net, first), dim=1), F.normalize(embed(net, second), dim=1)
    predictions = {"linear_probe": linear_probe_predictions(h_train, data.train_labels, h_test),
                   "knn": knn_predictions(h_train, data.train_labels, h_test)}
    labels = data.test_labels.cpu().numpy()
    return EncoderScores(
        linear_probe=float(np.mean(predictions["linear_probe"] == labels)),
        knn=float(np.mean(predictions["knn"] == labels)),
        alignment=float(alignment(z1, z2)),
        uniformity=float(uniformity(z1)),
        predictions=predictions,
    )


@torch.no_grad()
def collapse_metrics(model: nn.Module, data: ImageData, k: int = 20) -> dict[str, float]:
    """Four signs of collapse, read during training (chapter "Beyond negatives"'s dashboard):
    ``knn``, the kNN accuracy of ``h = model.encoder(x)`` (training images as neighbours, test
    images scored); and on the test images' projections ``z = model(x)``: ``uniformity`` of the
    L2-normalised ``z``, ``rank`` (:func:`~contrastive_tutorial.evaluate.effective_rank`, RankMe)
    and ``std`` (:func:`~contrastive_tutorial.evaluate.normalised_std`). Collapse to a point drives
    uniformity and std to 0 and the rank to 1; dimensional collapse lowers the rank alone."""
    h_train, h_test = embed(model.encoder, data.train_images), embed(model.encoder, data.test_images)
    z = embed(model, data.test_images)
    knn = np.mean(knn_predictions(h_train, data.train_labels, h_test, k) == data.test_labels.cpu().numpy())
    return {"knn": float(knn), "uniformity": float(uniformity(F.normalize(z, dim=1))),
            "rank": effective_rank(z), "std": normalised_std(z)}
