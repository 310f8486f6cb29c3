"""How positives are made for images: the SimCLR augmentation family, batched on any device.

Every image in a batch gets its own random parameters (crop box, flip, jitter factors,
grayscale, blur), drawn once into a :class:`ViewParams` and applied to the whole batch in a
few tensor ops on the batch's device, so a GPU is not starved by per-image CPU work.
:func:`reference_view` applies the same parameters to one PIL image with PIL's own
operations (what a per-image torchvision pipeline does on PIL images): the tests compare
the two, and ``benchmarks/augment_speed.py`` times them.

Geometry and the brightness/contrast/saturation/grayscale formulas are written here (each
is a line); hue rotation and Gaussian blur come from kornia. Chapters "InfoNCE and
temperature" (views of digits) and "SimCLR intuition" (which augmentations matter).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F
from torch import Tensor

from ..checks import pair, real

__all__ = ["ViewParams", "ImageViews", "random_resized_crop", "grayscale", "reference_view"]

_MASKS = ("flip", "jitter", "gray", "blur")
_LUMA = (0.299, 0.587, 0.114)  # ITU-R 601-2 weights, as PIL's convert("L") and torchvision


def _check_images(images: Tensor) -> None:
    if not isinstance(images, Tensor):
        raise TypeError(f"images must be a torch tensor, got {type(images).__name__}")
    if images.dim() != 4 or not images.is_floating_point():
        raise ValueError(f"images must be a float tensor of shape (B, C, H, W), got {tuple(images.shape)} {images.dtype}")
    if images.shape[1] not in (1, 3):
        raise ValueError(f"images must have 1 (gray) or 3 (RGB) channels, got {images.shape[1]}")
    from ..losses import _checking_values

    if _checking_values() and images.numel():
        low, high = float(images.min()), float(images.max())
        if not (math.isfinite(low) and math.isfinite(high)):
            raise ValueError("images hold NaN or inf values")
        if low < -1e-4 or high > 1 + 1e-4:
            raise ValueError(
                f"images must hold values in [0, 1] (uint8 images are scaled by 1/255 for you), got values in "
                f"[{low:.3g}, {high:.3g}]: divide floats in [0, 255] by 255, map normalised images back to [0, 1]")


def grayscale(images: Tensor) -> Tensor:
    """Luminance ``0.299 R + 0.587 G + 0.114 B`` of ``(B, 3, H, W)`` images as ``(B, 1, H, W)``."""
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"images must have shape (B, 1 or 3, H, W), got {tuple(images.shape)}")
    if images.shape[1] == 1:
        return images
    weights = images.new_tensor(_LUMA).view(1, 3, 1, 1)
    return (images * weights).sum(1, keepdim=True)


@dataclass
class ViewParams:
    """Random parameters of one view of each image; every field has shape ``(B,)``.

    Crop box in normalised coordinates (``[-1, 1]`` across the image): centre ``(cx, cy)``,
    half-width ``w`` and half-height ``h`` as fractions of the image's (area fraction
    ``w * h``); ``flip`` mirrors the crop. Jitter factors: ``brightness``, ``contrast``,
    ``saturation`` (1 = unchanged) and ``hue`` (a fraction of a turn, 0 = unchanged), used
    where ``jitter`` is true; ``gray`` and ``blur`` (with ``sigma`` in pixels) are masks.
    """

    cx: Tensor
    cy: Tensor
    w: Tensor
    h: Tensor
    flip: Tensor
    jitter: Tensor
    brightness: Tensor
    contrast: Tensor
    saturation: Tensor
    hue: Tensor
    gray: Tensor
    blur: Tensor
    sigma: Tensor

    def __getitem__(self, i: int) -> dict[str, float]:
        """The parameters of image ``i`` as plain numbers."""
        return {f.name: getattr(self, f.name)[i].item() for f in fields(self)}


def random_resized_crop(images: Tensor, params: ViewParams) -> Tensor:
    """Crop each image's box, mirror it where ``flip``, and resize it to full size: one batched op.

    The box is an affine sampling grid (``F.affine_grid``) read with bilinear
    ``F.grid_sample``: output coordinate ``u`` reads input ``x = ±w u + cx`` (and
    ``y = h v + cy``), ``(B, C, H, W) -> same``.
    """
    _check_images(images)
    sx = torch.where(params.flip, -params.w, params.w)
    theta = torch.zeros(images.shape[0], 2, 3, device=images.device, dtype=images.dtype)
    theta[:, 0, 0], theta[:, 0, 2], theta[:, 1, 1], theta[:, 1, 2] = sx, params.cx, params.h, params.cy
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _per_image(values: Tensor) -> Tensor:
    return values.view(-1, 1, 1, 1)


def colour_jitter(images: Tensor, params: ViewParams) -> Tensor:
    """Brightness, contrast, saturation, then hue, each clamped to [0, 1], where ``params.jitter``.

    With per-image factors ``b, c, s``: ``x <- b x``; ``x <- c x + (1 - c) mean(gray(x))``;
    ``x <- s x + (1 - s) gray(x)``; hue rotated by ``2 pi params.hue`` in HSV (kornia). These
    are PIL's ImageEnhance definitions, which torchvision's ColorJitter follows. Saturation
    and hue leave 1-channel images unchanged.
    """
    out = (images * _per_image(params.brightness)).clamp(0, 1)
    mean = grayscale(out).mean(dim=(1, 2, 3), keepdim=True)
    c = _per_image(params.contrast)
    out = (c * out + (1 - c) * mean).clamp(0, 1)
    if images.shape[1] == 3:
        s = _per_image(params.saturation)
        out = (s * out + (1 - s) * grayscale(out)).clamp(0, 1)
        from kornia.enhance import adjust_hue

        out = adjust_hue(out, params.hue * 2 * math.pi).clamp(0, 1)
    return torch.where(_per_image(params.jitter), out, images)


def gaussian_blur(images: Tensor, params: ViewParams, kernel_size: int) -> Tensor:
    """Blur with a Gaussian of standard deviation ``params.sigma`` (pixels) where ``params.blur``."""
    from kornia.filters import gaussian_blur2d

    sigma = params.sigma.to(images.dtype).view(-1, 1).expand(-1, 2)
    blurred = gaussian_blur2d(images, (kernel_size, kernel_size), sigma, border_type="reflect")
    return torch.where(_per_image(params.blur), blurred.to(images.dtype), images)


class ImageViews:
    """A random view of each image of a batch: resized crop, flip, colour jitter, grayscale, blur.

    ``views = ImageViews.simclr(); v1, v2 = views(x), views(x)`` gives two independent views
    of every image of ``x`` (``(B, C, H, W)`` floats in [0, 1], or ``uint8``). The default
    constructor makes the mild views of chapter "InfoNCE and temperature"; :meth:`simclr`
    makes the paper's. ``generator`` fixes the random parameters (drawn on its device, then
    moved to the batch's); without one they are drawn on the batch's device.

    Args:
        scale: range of the crop's area as a fraction of the image's.
        ratio: range of the crop's aspect ratio (width / height), sampled log-uniformly.
        flip: probability of mirroring the crop.
        brightness, contrast, saturation: factors are drawn from ``[1 - s, 1 + s]``.
        hue: shift drawn from ``[-hue, hue]`` (fraction of a turn, at most 0.5).
        jitter: probability of applying the colour jitter at all.
        gray: probability of converting to grayscale (kept with 3 channels).
        blur: probability of a Gaussian blur with ``sigma`` drawn from ``blur_sigma`` pixels.
        blur_kernel: odd kernel size of the blur; default about a tenth of the image side.
    """

    def __init__(
        self,
        scale: tuple[float, float] = (0.5, 1.0),
        ratio: tuple[float, float] = (3 / 4, 4 / 3),
        flip: float = 0.0,
        brightness: float = 0.4,
        contrast: float = 0.4,
        saturation: float = 0.0,
        hue: float = 0.0,
        jitter: float = 1.0,
        gray: float = 0.0,
        blur: float = 0.0,
        blur_sigma: tuple[float, float] = (0.1, 2.0),
        blur_kernel: int | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        scale, ratio, blur_sigma = pair(scale, "scale"), pair(ratio, "ratio"), pair(blur_sigma, "blur_sigma")
        flip, jitter, gray, blur = (real(v, n) for v, n in ((flip, "flip"), (jitter, "jitter"), (gray, "gray"), (blur, "blur")))
        brightness, contrast, saturation, hue = (real(v, n) for v, n in (
            (brightness, "brightness"), (contrast, "contrast"), (saturation, "saturation"), (hue, "hue")))
        if not 0 < blur_sigma[0] <= blur_sigma[1]:
            raise ValueError(f"blur_sigma must satisfy 0 < low <= high, got {blur_sigma}")
        if not 0 < scale[0] <= scale[1] <= 1:
            raise ValueError(f"scale must satisfy 0 < low <= high <= 1, got {scale}")
        if not 0 < ratio[0] <= ratio[1]:
            raise ValueError(f"ratio must satisfy 0 < low <= high, got {ratio}")
        for name, p in (("flip", flip), ("jitter", jitter), ("gray", gray), ("blur", blur)):
            if not 0 <= p <= 1:
                raise ValueError(f"{name} is a probability and must lie in [0, 1], got {p}")
        for name, s in (("brightness", brightness), ("contrast", contrast), ("saturation", saturation)):
            if not 0 <= s <= 1:
                raise ValueError(f"{name} strength must lie in [0, 1], got {s}")
        if not 0 <= hue <= 0.5:
            raise ValueError(f"hue must lie in [0, 0.5], got {hue}")
        if blur_kernel is not None and (isinstance(blur_kernel, bool) or not isinstance(blur_kernel, int)
                                        or blur_kernel < 1 or blur_kernel % 2 == 0):
            raise ValueError(f"blur_kernel must be a positive odd integer, got {blur_kernel}")
        self.scale, self.ratio, self.flip = scale, ratio, flip
        self.brightness, self.contrast, self.saturation, self.hue = brightness, contrast, saturation, hue
        self.jitter, self.gray, self.blur = jitter, gray, blur
        self.blur_sigma, self.blur_kernel = blur_sigma, blur_kernel
        self.generator = generator

    @classmethod
    def simclr(cls, strength: float = 0.5, blur: bool = False, **overrides) -> "ImageViews":
        """SimCLR's views (Chen et al. 2020, Appendix A): crop 8-100 % of the area, flip with p = 0.5,
        colour jitter of strength ``s`` (0.8 s for brightness/contrast/saturation, 0.2 s for hue)
        with p = 0.8, grayscale with p = 0.2, and Gaussian blur with p = 0.5 where ``blur`` (the
        paper blurs ImageNet, not CIFAR-10). The paper's CIFAR-10 runs use ``strength=0.5``."""
        if not 0 <= real(strength, "strength") <= 1.25:
            raise ValueError(f"strength must lie in [0, 1.25] (brightness, contrast and saturation move by up to "
                             f"0.8 x strength, at most 1), got {strength!r}")
        settings = dict(
            scale=(0.08, 1.0), flip=0.5, brightness=0.8 * strength, contrast=0.8 * strength,
            saturation=0.8 * strength, hue=0.2 * strength, jitter=0.8, gray=0.2, blur=0.5 if blur else 0.0,
        )
        settings.update(overrides)
        return cls(**settings)

    def _uniform(self, n: int, low: float, high: float, device: torch.device | None) -> Tensor:
        return torch.rand(n, generator=self.generator, dtype=torch.float64, device=device) * (high - low) + low

    def sample(self, n: int, device: torch.device | str | None = None) -> ViewParams:
        """Draw the parameters of one view of each of ``n`` images on ``device`` (default: the
        generator's device, the CPU without one)."""
        if device is None:
            device = self.generator.device if self.generator is not None else "cpu"

        def uniform(low: float, high: float) -> Tensor:
            return self._uniform(n, low, high, device)

        def bernoulli(p: float) -> Tensor:
            return self._uniform(n, 0, 1, device) < p

        area = uniform(*self.scale)
        log_ratio = uniform(math.log(self.ratio[0]), math.log(self.ratio[1]))
        w = (area * log_ratio.exp()).sqrt().clamp(max=1.0)
        h = (area / log_ratio.exp()).sqrt().clamp(max=1.0)
        return ViewParams(
            cx=uniform(-1, 1) * (1 - w),
            cy=uniform(-1, 1) * (1 - h),
            w=w,
            h=h,
            flip=bernoulli(self.flip),
            jitter=bernoulli(self.jitter),
            brightness=uniform(1 - self.brightness, 1 + self.brightness),
            contrast=uniform(1 - self.contrast, 1 + self.contrast),
            saturation=uniform(1 - self.saturation, 1 + self.saturation),
            hue=uniform(-self.hue, self.hue),
            gray=bernoulli(self.gray),
            blur=bernoulli(self.blur),
            sigma=uniform(*self.blur_sigma),
        )

    def kernel_size(self, image_size: int) -> int:
        """The blur kernel for images of side ``image_size``: ``blur_kernel`` or about 10 % of it, odd."""
        return self.blur_kernel or 2 * max(1, round(0.05 * image_size)) + 1

    def apply(self, images: Tensor, params: ViewParams) -> Tensor:
        """The views of ``images`` under ``params``: crop/flip, jitter, grayscale, blur, in that order."""
        if not isinstance(params, ViewParams):
            raise TypeError(f"params must be the ViewParams that ImageViews.sample returns, got {type(params).__name__}")
        if isinstance(images, Tensor) and images.dtype == torch.uint8:
            images = images.float() / 255
        _check_images(images)
        if len(params.w) != images.shape[0]:
            raise ValueError(f"params were drawn for {len(params.w)} images, got a batch of {images.shape[0]}")
        params = ViewParams(**{
            f.name: getattr(params, f.name).to(images.device, None if f.name in _MASKS else images.dtype)
            for f in fields(params)
        })
        out = random_resized_crop(images, params)
        if self.jitter > 0:
            out = colour_jitter(out, params)
        if self.gray > 0 and out.shape[1] == 3:
            out = torch.where(_per_image(params.gray), grayscale(out).expand_as(out), out)
        if self.blur > 0:
            out = gaussian_blur(out, params, self.kernel_size(min(out.shape[-2:])))
        return out

    def __call__(self, images: Tensor) -> Tensor:
        """A view of each image; parameters drawn with ``generator`` or, without one, on the images' device."""
        if not isinstance(images, Tensor):
            raise TypeError(f"images must be a torch tensor of shape (B, C, H, W), got {type(images).__name__}")
        device = None if self.generator is not None else images.device
        return self.apply(images, self.sample(images.shape[0], device))


def reference_view(image, params: dict[str, float], views: ImageViews):
    """One view of one PIL image under ``params`` (a row of :class:`ViewParams`), with PIL's ops.

    The per-image path a torchvision pipeline takes on PIL images: ``Image.resize`` of the
    crop box (bilinear), ``ImageOps.mirror``, ``ImageEnhance`` brightness/contrast/colour, a
    hue shift in PIL's HSV mode, ``convert("L")``. Blur is PIL's ``GaussianBlur`` (box-filter
    approximation). The reference for :meth:`ImageViews.apply`'s correctness and speed.
    """
    from PIL import Image, ImageEnhance, ImageFilter, ImageOps

    width, height = image.size
    p = params
    missing = sorted({f.name for f in fields(ViewParams)} - set(p))
    if missing:
        raise ValueError(f"params must hold one image's view parameters (a row of ViewParams, e.g. "
                         f"views.sample(n)[i]); missing {missing}")
    box = (
        (p["cx"] - p["w"] + 1) / 2 * width, (p["cy"] - p["h"] + 1) / 2 * height,
        (p["cx"] + p["w"] + 1) / 2 * width, (p["cy"] + p["h"] + 1) / 2 * height,
    )
    out = image.resize((width, height), Image.Resampling.BILINEAR, box=box)
    if p["flip"]:
        out = ImageOps.mirror(out)
    if views.jitter > 0 and p["jitter"]:
        out = ImageEnhance.Brightness(out).enhance(p["brightness"])
        out = ImageEnhance.Contrast(out).enhance(p["contrast"])
        if out.mode == "RGB":
            out = ImageEnhance.Color(out).enhance(p["saturation"])
            hsv = out.convert("HSV")
            h, s, v = hsv.split()
            shift = int(round(p["hue"] * 255))
            h = h.point(lambda x: (x + shift) % 256)
            out = Image.merge("HSV", (h, s, v)).convert("RGB")
    if views.gray > 0 and p["gray"] and out.mode == "RGB":
        out = out.convert("L").convert("RGB")
    if views.blur > 0 and p["blur"]:
        out = out.filter(ImageFilter.GaussianBlur(radius=p["sigma"]))
    return out
