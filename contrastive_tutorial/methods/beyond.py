"""The families that avoid collapse without (only) in-batch negatives: MoCo, BYOL/SimSiam,
SwAV, Barlow Twins and VICReg, each an ``nn.Module`` with the same interface as
:class:`~contrastive_tutorial.methods.simclr.SimCLR`:

- ``encoder``: the network whose output ``h`` is the representation;
- ``forward(x)``: the projection the loss acts on;
- ``loss(x1, x2)``: the method's loss on two views of a batch;
- ``after_step()`` (where needed): the momentum update after each optimizer step.

so that :func:`~contrastive_tutorial.methods.simclr.train_views` trains any of them.
Chapter "Beyond negatives".
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..encoders import ProjectionHead
from ..losses import barlow_twins_loss, byol_loss, moco_loss, swav_loss, vicreg_loss
from ..scale import gathered

__all__ = ["ema_update", "MoCo", "BYOL", "SwAV", "BarlowTwins", "VICReg"]


@torch.no_grad()
def ema_update(target: nn.Module, online: nn.Module, momentum: float) -> None:
    r"""Momentum (exponential moving average) update :math:`\xi \leftarrow m\,\xi + (1 - m)\,\theta`.

    Every parameter :math:`\xi` of ``target`` moves towards its counterpart :math:`\theta`
    in ``online``; buffers (batch-norm statistics) are copied. ``momentum = 0`` makes the
    target a copy of the online network (SimSiam); ``momentum = 1`` freezes it.
    """
    if not 0 <= momentum <= 1:
        raise ValueError(f"momentum must lie in [0, 1], got {momentum}")
    for t, o in zip(target.parameters(), online.parameters(), strict=True):
        t.mul_(momentum).add_(o.detach(), alpha=1 - momentum)
    for t, o in zip(target.buffers(), online.buffers(), strict=True):
        t.copy_(o)


def _frozen_copy(module: nn.Module) -> nn.Module:
    twin = copy.deepcopy(module)
    twin.requires_grad_(False)
    return twin


class MoCo(nn.Module):
    """MoCo v2 (He et al. 2020; Chen et al. 2020b): negatives from a queue of keys encoded by
    a momentum copy of the network, so their number does not depend on the batch size.

    ``loss`` is :func:`~contrastive_tutorial.losses.moco_loss` both ways (view 1's queries
    against view 2's keys and back), then the newest keys replace the oldest in the queue.
    The key encoder follows the query encoder by :func:`ema_update`. One device, so no
    shuffled batch norm (the paper's guard against batch-statistics leaking between the
    query and its key across GPUs).
    """

    def __init__(
        self,
        encoder: nn.Module,
        feature_dim: int,
        projection_dim: int = 128,
        queue_size: int = 4096,
        temperature: float = 0.2,
        momentum: float = 0.99,
        hidden_dim: int | None = None,
    ) -> None:
        super().__init__()
        if queue_size < 1:
            raise ValueError(f"queue_size must be >= 1, got {queue_size}")
        self.encoder = encoder
        self.projector = ProjectionHead(feature_dim, hidden_dim, projection_dim)
        self.key_encoder, self.key_projector = _frozen_copy(encoder), _frozen_copy(self.projector)
        self.temperature, self.momentum = temperature, momentum
        self.register_buffer("queue", F.normalize(torch.randn(queue_size, projection_dim), dim=1))
        self.register_buffer("queue_ids", torch.full((queue_size,), -1, dtype=torch.long))  # -1: no image
        self.register_buffer("pointer", torch.zeros((), dtype=torch.long))

    def forward(self, x: Tensor) -> Tensor:
        return self.projector(self.encoder(x))

    @torch.no_grad()
    def keys(self, x: Tensor) -> Tensor:
        return F.normalize(self.key_projector(self.key_encoder(x)).float(), dim=1)

    @torch.no_grad()
    def enqueue(self, keys: Tensor, ids: Tensor | None = None) -> None:
        """Write ``keys`` (and the indices of their images, ``-1`` when unknown) over the oldest entries."""
        n, size = len(keys), len(self.queue)
        idx = (self.pointer + torch.arange(n, device=keys.device)) % size
        self.queue[idx[-size:]] = keys[-size:].to(self.queue.dtype)
        self.queue_ids[idx[-size:]] = -1 if ids is None else ids[-size:].to(self.queue_ids)
        self.pointer.copy_((self.pointer + n) % size)

    def loss(self, x1: Tensor, x2: Tensor, ids: Tensor | None = None) -> Tensor:
        """``ids``: each image's index in the data set. A queued key of the query's own image (from
        an earlier epoch: a positive, not a negative) is then left out of that query's
        denominator; the queue is deduplicated against the batch."""
        q1, q2 = self(x1), self(x2)
        k1, k2 = self.keys(x1), self.keys(x2)
        queue = self.queue.clone()
        stale = None if ids is None else self.queue_ids[None, :] == ids[:, None]
        loss = 0.5 * (moco_loss(q1, k2, queue, self.temperature, queue_mask=stale)
                      + moco_loss(q2, k1, queue, self.temperature, queue_mask=stale))
        if ids is None:
            self.enqueue(*gathered(k2))  # under torchrun: every process's keys join the queue
        else:
            self.enqueue(*gathered(k2, ids))
        return loss

    def after_step(self) -> None:
        ema_update(self.key_encoder, self.encoder, self.momentum)
        ema_update(self.key_projector, self.projector, self.momentum)


class BYOL(nn.Module):
    """BYOL (Grill et al. 2020): an online network with a predictor regresses a target
    network's projection of the other view; the target is a momentum copy of the online
    network and gets no gradient. ``momentum=0`` gives SimSiam (Chen & He 2021): the target
    is the online network itself behind a stop-gradient.

    The paper raises the momentum from 0.996 to 1 over training with a cosine schedule; here
    it stays at ``momentum``, which suits the short runs of the quick profile.
    ``predictor=False`` removes the predictor (an identity), the ablation that collapses;
    ``stop_gradient=False`` (SimSiam only) lets the gradient into the target branch too, the
    other ablation that collapses (Chen & He, Figure 2).
    """

    def __init__(
        self,
        encoder: nn.Module,
        feature_dim: int,
        projection_dim: int = 128,
        hidden_dim: int | None = None,
        momentum: float = 0.99,
        predictor: bool = True,
        stop_gradient: bool = True,
    ) -> None:
        super().__init__()
        if not stop_gradient and momentum != 0:
            raise ValueError("stop_gradient=False is SimSiam's ablation: it needs momentum=0 (a momentum "
                             "target gets no gradient anyway)")
        self.stop_gradient = stop_gradient
        self.encoder = encoder
        self.projector = ProjectionHead(feature_dim, hidden_dim, projection_dim)
        self.predictor = ProjectionHead(projection_dim, hidden_dim, projection_dim) if predictor else nn.Identity()
        self.momentum = momentum
        if momentum > 0:  # SimSiam (momentum 0) has no separate target: see loss
            self.target_encoder, self.target_projector = _frozen_copy(encoder), _frozen_copy(self.projector)

    def forward(self, x: Tensor) -> Tensor:
        return self.projector(self.encoder(x))

    def loss(self, x1: Tensor, x2: Tensor) -> Tensor:
        z1, z2 = self(x1), self(x2)
        p1, p2 = self.predictor(z1), self.predictor(z2)
        if self.momentum == 0:  # SimSiam: the target is this very pass behind a stop-gradient
            t1, t2 = z1, z2
        else:
            with torch.no_grad():
                t1, t2 = self.target_projector(self.target_encoder(x1)), self.target_projector(self.target_encoder(x2))
        return 0.5 * (byol_loss(p1, t2, self.stop_gradient) + byol_loss(p2, t1, self.stop_gradient))

    def after_step(self) -> None:
        if self.momentum == 0:
            return
        ema_update(self.target_encoder, self.encoder, self.momentum)
        ema_update(self.target_projector, self.projector, self.momentum)


class SwAV(nn.Module):
    """SwAV (Caron et al. 2020): online clustering of the normalised projections onto
    ``n_prototypes`` learnable, normalised prototypes; each view's equipartitioned code
    (Sinkhorn-Knopp) is predicted from the other view (:func:`~contrastive_tutorial.losses.swav_loss`).
    Two views of equal size (no multi-crop) and no queue: the batch alone is partitioned.
    """

    def __init__(
        self,
        encoder: nn.Module,
        feature_dim: int,
        projection_dim: int = 128,
        n_prototypes: int = 30,
        temperature: float = 0.1,
        epsilon: float = 0.05,
        hidden_dim: int | None = None,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.projector = ProjectionHead(feature_dim, hidden_dim, projection_dim)
        self.prototypes = nn.Linear(projection_dim, n_prototypes, bias=False)
        self.temperature, self.epsilon = temperature, epsilon

    def forward(self, x: Tensor) -> Tensor:
        return self.projector(self.encoder(x))

    def loss(self, x1: Tensor, x2: Tensor) -> Tensor:
        with torch.no_grad():  # prototypes live on the unit sphere, as the scores' cosines need
            self.prototypes.weight.copy_(F.normalize(self.prototypes.weight, dim=1))
        z1, z2 = F.normalize(self(x1), dim=1), F.normalize(self(x2), dim=1)
        # under torchrun the equipartition (Sinkhorn-Knopp) runs over the global batch
        return swav_loss(*gathered(self.prototypes(z1), self.prototypes(z2)), self.temperature, self.epsilon)


class BarlowTwins(nn.Module):
    """Barlow Twins (Zbontar et al. 2021): the cross-correlation matrix of the two views'
    batch-standardised projections is pushed towards the identity
    (:func:`~contrastive_tutorial.losses.barlow_twins_loss`); no negatives, no asymmetry."""

    def __init__(
        self,
        encoder: nn.Module,
        feature_dim: int,
        projection_dim: int = 128,
        lambd: float = 5e-3,
        hidden_dim: int | None = None,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.projector = ProjectionHead(feature_dim, hidden_dim, projection_dim)
        self.lambd = lambd

    def forward(self, x: Tensor) -> Tensor:
        return self.projector(self.encoder(x))

    def loss(self, x1: Tensor, x2: Tensor) -> Tensor:
        return barlow_twins_loss(*gathered(self(x1), self(x2)), self.lambd)  # statistics of the global batch


class VICReg(nn.Module):
    """VICReg (Bardes et al. 2022): invariance between the views' projections, a variance floor
    per feature and decorrelated features, each view regularised on its own
    (:func:`~contrastive_tutorial.losses.vicreg_loss`); no negatives, no asymmetry, no
    standardisation. The second redundancy-reduction method beside :class:`BarlowTwins`."""

    def __init__(
        self,
        encoder: nn.Module,
        feature_dim: int,
        projection_dim: int = 128,
        hidden_dim: int | None = None,
        sim_coeff: float = 25.0,
        std_coeff: float = 25.0,
        cov_coeff: float = 1.0,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.projector = ProjectionHead(feature_dim, hidden_dim, projection_dim)
        self.coefficients = dict(sim_coeff=sim_coeff, std_coeff=std_coeff, cov_coeff=cov_coeff)

    def forward(self, x: Tensor) -> Tensor:
        return self.projector(self.encoder(x))

    def loss(self, x1: Tensor, x2: Tensor) -> Tensor:
        return vicreg_loss(*gathered(self(x1), self(x2)), **self.coefficients)  # statistics of the global batch
