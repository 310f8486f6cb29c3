"""How positives are made. Images: batched augmentations with independent random
parameters per image, on whatever device the batch lives (no per-image CPU loop).

Chapter "InfoNCE and temperature" uses them on digits; chapter "SimCLR intuition"
discusses which augmentations matter.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["random_resized_crop", "random_brightness_contrast", "ImageViews"]


def _uniform(n: int, low: float, high: float, like: Tensor, generator: torch.Generator | None) -> Tensor:
    return torch.rand(n, generator=generator, device=like.device if generator is None else "cpu").to(
        like.device, like.dtype
    ) * (high - low) + low


def random_resized_crop(
    images: Tensor,
    scale: tuple[float, float] = (0.5, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    flip: bool = False,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Crop a random box of each image and resize it back to full size, in one batched op.

    Box area is a fraction ``scale`` of the image, aspect ratio log-uniform in ``ratio``,
    position uniform; with ``flip`` half the crops are mirrored. Implemented as an affine
    sampling grid (``F.affine_grid`` + bilinear ``F.grid_sample``), ``(B, C, H, W) -> same``.
    """
    if images.dim() != 4 or not images.is_floating_point():
        raise ValueError(f"images must be a float tensor of shape (B, C, H, W), got {tuple(images.shape)} {images.dtype}")
    b = images.shape[0]
    area = _uniform(b, *scale, images, generator)
    log_r = _uniform(b, math.log(ratio[0]), math.log(ratio[1]), images, generator)
    w = (area * log_r.exp()).sqrt().clamp(max=1.0)
    h = (area / log_r.exp()).sqrt().clamp(max=1.0)
    cx = (_uniform(b, -1, 1, images, generator)) * (1 - w)
    cy = (_uniform(b, -1, 1, images, generator)) * (1 - h)
    sx = w
    if flip:
        sign = torch.where(_uniform(b, 0, 1, images, generator) < 0.5, -1.0, 1.0).to(images.dtype)
        sx = w * sign
    theta = torch.zeros(b, 2, 3, device=images.device, dtype=images.dtype)
    theta[:, 0, 0], theta[:, 0, 2], theta[:, 1, 1], theta[:, 1, 2] = sx, cx, h, cy
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def random_brightness_contrast(
    images: Tensor, brightness: float = 0.4, contrast: float = 0.4, generator: torch.Generator | None = None
) -> Tensor:
    """Scale brightness and contrast of each image by factors drawn from ``[1-s, 1+s]``; clamp to [0, 1]."""
    b = images.shape[0]
    shape = (b,) + (1,) * (images.dim() - 1)
    bright = _uniform(b, 1 - brightness, 1 + brightness, images, generator).view(shape)
    contr = _uniform(b, 1 - contrast, 1 + contrast, images, generator).view(shape)
    mean = images.mean(dim=tuple(range(1, images.dim())), keepdim=True)
    return ((images * bright - mean) * contr + mean).clamp(0, 1)


class ImageViews:
    """A random view of each image in a batch: resized crop (optionally flipped), then jitter.

    ``views = ImageViews(); v1, v2 = views(x), views(x)`` gives two independent views.
    """

    def __init__(
        self,
        scale: tuple[float, float] = (0.5, 1.0),
        flip: bool = False,
        brightness: float = 0.4,
        contrast: float = 0.4,
        generator: torch.Generator | None = None,
    ) -> None:
        self.scale, self.flip = scale, flip
        self.brightness, self.contrast = brightness, contrast
        self.generator = generator

    def __call__(self, images: Tensor) -> Tensor:
        out = random_resized_crop(images, self.scale, flip=self.flip, generator=self.generator)
        return random_brightness_contrast(out, self.brightness, self.contrast, generator=self.generator)
