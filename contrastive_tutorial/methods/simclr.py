"""SimCLR on small images: encoder f, projector g, NT-Xent on two batched views.

Used by the chapter "InfoNCE and temperature" for its temperature sweep, and taught in
full in "SimCLR intuition".
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..data import ImageData
from ..encoders import ProjectionHead, SmallCNN
from ..evaluate import embed, knn_accuracy, linear_probe_accuracy
from ..losses import alignment, nt_xent, uniformity
from ..profiles import seed_everything
from ..train import History, fit
from ..views import ImageViews

__all__ = ["SimCLR", "train_simclr", "evaluate_encoder"]


class SimCLR(nn.Module):
    """Encoder ``f`` and projector ``g``: ``forward(x)`` returns the projection ``z = g(f(x))``."""

    def __init__(self, encoder: nn.Module, feature_dim: int, projection_dim: int = 128) -> None:
        super().__init__()
        self.encoder = encoder
        self.projector = ProjectionHead(feature_dim, out_dim=projection_dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.projector(self.encoder(x))


def _batches(images: Tensor, batch_size: int, generator: torch.Generator):
    def epoch():
        order = torch.randperm(len(images), generator=generator)
        for start in range(0, len(order) - batch_size + 1, batch_size):  # drop the ragged last batch
            yield images[order[start : start + batch_size]]

    return epoch


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
    device: torch.device | str = "cpu",
    progress: bool = False,
) -> tuple[SimCLR, History]:
    """Train a :class:`SmallCNN` with NT-Xent at ``temperature`` on the training images.

    Returns the model (its ``encoder`` gives the representation ``h``) and the history.
    """
    generator = seed_everything(seed)
    views = views or ImageViews(generator=generator)
    model = SimCLR(SmallCNN(data.train_images.shape[1], feature_dim), feature_dim, projection_dim).to(device)
    images = data.train_images.float().div(255)
    batch_size = min(batch_size, len(images))

    def loss_fn(model: SimCLR, batch: Tensor) -> Tensor:
        batch = batch.to(device)
        return nt_xent(model(views(batch)), model(views(batch)), temperature)

    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    history = fit(model, loss_fn, _batches(images, batch_size, generator), optimizer, epochs, device=device, progress=progress)
    return model, history


@dataclass
class EncoderScores:
    """Downstream accuracy of the representation ``h`` and geometry of the normalised projection."""

    linear_probe: float
    knn: float
    alignment: float
    uniformity: float


@torch.no_grad()
def evaluate_encoder(model: SimCLR, data: ImageData, views: ImageViews | None = None, seed: int = 0) -> EncoderScores:
    """Linear-probe and kNN test accuracy of ``h = f(x)``; alignment of two views and
    uniformity of the L2-normalised projection ``z`` on the test images."""
    h_train, h_test = embed(model.encoder, data.train_images), embed(model.encoder, data.test_images)
    views = views or ImageViews(generator=torch.Generator().manual_seed(seed))
    device = next(model.parameters()).device
    test = data.test_images.float().div(255)
    model.eval()
    z1 = nn.functional.normalize(model(views(test).to(device)).float().cpu(), dim=1)
    z2 = nn.functional.normalize(model(views(test).to(device)).float().cpu(), dim=1)
    model.train()
    return EncoderScores(
        linear_probe=linear_probe_accuracy(h_train, data.train_labels, h_test, data.test_labels),
        knn=knn_accuracy(h_train, data.train_labels, h_test, data.test_labels),
        alignment=float(alignment(z1, z2)),
        uniformity=float(uniformity(z1)),
    )
