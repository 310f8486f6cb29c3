"""Batched image views against PIL's per-image operations and hand-written references."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from contrastive_tutorial.views import ImageViews, grayscale, reference_view


def _smooth_rgb(n: int, size: int = 16, seed: int = 0) -> torch.Tensor:
    """Smooth random colour images (uint8): bilinear upsampling of 4x4 noise, so resampling
    differences between PIL and grid_sample stay small."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 3, 4, 4, generator=g)
    fine = torch.nn.functional.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=True)
    return (fine * 255).round().to(torch.uint8)


def _to_pil(image: torch.Tensor) -> Image.Image:
    array = image.permute(1, 2, 0).numpy()
    return Image.fromarray(array[..., 0] if array.shape[2] == 1 else array)


def _from_pil(image: Image.Image) -> torch.Tensor:
    array = np.asarray(image, dtype=np.float32) / 255
    return torch.from_numpy(array[..., None] if array.ndim == 2 else array).permute(2, 0, 1)


def _compare_with_pil(views: ImageViews, images: torch.Tensor) -> torch.Tensor:
    params = views.sample(len(images))
    batched = views.apply(images, params)
    reference = torch.stack([_from_pil(reference_view(_to_pil(x), params[i], views)) for i, x in enumerate(images)])
    return (batched - reference).abs()


def test_full_crop_without_jitter_is_identity_and_full_flip_mirrors():
    x = torch.rand(4, 3, 8, 8)
    same = ImageViews(scale=(1, 1), ratio=(1, 1), jitter=0.0)
    torch.testing.assert_close(same(x), x, atol=1e-5, rtol=0)
    mirror = ImageViews(scale=(1, 1), ratio=(1, 1), jitter=0.0, flip=1.0)
    torch.testing.assert_close(mirror(x), x.flip(-1), atol=1e-5, rtol=0)


def test_geometry_matches_pil_crop_resize_and_flip():
    views = ImageViews(scale=(0.2, 1.0), flip=0.5, jitter=0.0, generator=torch.Generator().manual_seed(1))
    err = _compare_with_pil(views, _smooth_rgb(32))
    assert err.mean() < 0.004 and err.max() < 0.02, (err.mean(), err.max())


def test_colour_jitter_and_grayscale_match_pil():
    views = ImageViews(scale=(1, 1), ratio=(1, 1), brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1,
                       jitter=0.8, gray=0.2, generator=torch.Generator().manual_seed(2))
    err = _compare_with_pil(views, _smooth_rgb(64))
    assert err.mean() < 0.008 and err.max() < 0.05, (err.mean(), err.max())


def test_simclr_views_match_pil_without_blur_on_gray_and_rgb():
    views = ImageViews.simclr(generator=torch.Generator().manual_seed(3))
    assert _compare_with_pil(views, _smooth_rgb(32)).mean() < 0.008
    gray = _smooth_rgb(16)[:, :1]
    assert _compare_with_pil(views, gray).mean() < 0.008


def test_a_planted_bug_is_caught_by_the_pil_comparison():
    """The comparison can fail: a hue shift in the wrong direction is far from PIL's."""
    views = ImageViews(scale=(1, 1), ratio=(1, 1), jitter=1.0, brightness=0, contrast=0, hue=0.2,
                       generator=torch.Generator().manual_seed(4))
    images = _smooth_rgb(16)
    params = views.sample(len(images))
    flipped = views.sample(len(images))
    for name, value in vars(params).items():
        setattr(flipped, name, value.clone())
    flipped.hue = -params.hue
    batched = views.apply(images, flipped)
    reference = torch.stack([_from_pil(reference_view(_to_pil(x), params[i], views)) for i, x in enumerate(images)])
    assert (batched - reference).abs().mean() > 0.03


def test_parameters_follow_their_distributions():
    views = ImageViews.simclr(blur=True, generator=torch.Generator().manual_seed(0))
    p = views.sample(20000)
    area = p.w * p.h
    assert area.min() >= 0.08 - 1e-9 and area.max() <= 1 + 1e-9
    assert ((p.cx - p.w) >= -1 - 1e-9).all() and ((p.cx + p.w) <= 1 + 1e-9).all()  # box inside the image
    for mask, prob in ((p.flip, 0.5), (p.jitter, 0.8), (p.gray, 0.2), (p.blur, 0.5)):
        assert abs(mask.double().mean().item() - prob) < 0.02
    assert abs(p.brightness.min().item() - 0.6) < 0.01 and abs(p.brightness.max().item() - 1.4) < 0.01
    assert p.hue.abs().max() <= 0.1
    log_ratio = (p.w / p.h).log()[area < 0.5]  # no clamping for small boxes: log-uniform in the ratio range
    assert abs(log_ratio.mean().item()) < 0.02 and log_ratio.abs().max() <= math.log(4 / 3) + 1e-6


def test_views_are_independent_per_image_and_reproducible():
    x = torch.rand(1, 3, 16, 16).repeat(8, 1, 1, 1)
    out = ImageViews.simclr(generator=torch.Generator().manual_seed(0))(x)
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1
    assert not torch.allclose(out[0], out[1])
    again = ImageViews.simclr(generator=torch.Generator().manual_seed(0))(x)
    torch.testing.assert_close(out, again)


def test_uint8_input_is_scaled_like_float_input():
    x = _smooth_rgb(4)
    views = ImageViews.simclr(generator=torch.Generator().manual_seed(0))
    params = views.sample(4)
    torch.testing.assert_close(views.apply(x, params), views.apply(x.float() / 255, params))


def test_grayscale_uses_luma_weights():
    x = torch.rand(3, 3, 5, 5, dtype=torch.float64)
    expected = 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]
    torch.testing.assert_close(grayscale(x)[:, 0], expected)
    views = ImageViews(scale=(1, 1), ratio=(1, 1), jitter=0.0, gray=1.0)
    out = views(x.float())
    assert torch.equal(out[:, 0], out[:, 1]) and torch.equal(out[:, 1], out[:, 2])


def _blur_reference(image: np.ndarray, sigma: float, k: int) -> np.ndarray:
    """2-D Gaussian blur by loops, float64, reflect padding (edge pixel not repeated)."""
    r = k // 2
    weights = np.array([math.exp(-(i - r) ** 2 / (2 * sigma**2)) for i in range(k)])
    weights /= weights.sum()
    c, h, w = image.shape
    padded = np.pad(image, ((0, 0), (r, r), (r, r)), mode="reflect")
    out = np.zeros_like(image)
    for ch in range(c):
        for y in range(h):
            for x in range(w):
                out[ch, y, x] = sum(
                    weights[i] * weights[j] * padded[ch, y + i, x + j] for i in range(k) for j in range(k)
                )
    return out


def test_blur_matches_a_loop_gaussian_with_per_image_sigma():
    views = ImageViews(scale=(1, 1), ratio=(1, 1), jitter=0.0, blur=1.0, blur_kernel=5,
                       generator=torch.Generator().manual_seed(0))
    x = torch.rand(3, 2 + 1, 9, 9, dtype=torch.float64)
    params = views.sample(3)
    out = views.apply(x, params)
    for i in range(3):
        expected = _blur_reference(x[i].numpy(), params.sigma[i].item(), 5)
        np.testing.assert_allclose(out[i].numpy(), expected, atol=1e-6)
    assert len(set(params.sigma.tolist())) == 3  # each image its own sigma


def test_saturation_zero_is_gray_and_one_channel_images_keep_their_shape():
    views = ImageViews(scale=(1, 1), ratio=(1, 1), brightness=0, contrast=0, saturation=1.0, jitter=1.0)
    x = torch.rand(2, 3, 6, 6)
    params = views.sample(2)
    params.saturation = torch.zeros(2, dtype=torch.float64)
    out = views.apply(x, params)
    torch.testing.assert_close(out, grayscale(x).expand_as(x), atol=1e-4, rtol=0)
    gray = ImageViews.simclr(blur=True)(torch.rand(5, 1, 8, 8))
    assert gray.shape == (5, 1, 8, 8)


def test_bad_input_is_refused_with_the_argument_named():
    with pytest.raises(ValueError, match="images"):
        ImageViews()(torch.zeros(3, 8, 8))
    with pytest.raises(ValueError, match="channels"):
        ImageViews()(torch.zeros(2, 2, 8, 8))
    with pytest.raises(ValueError, match="gray"):
        ImageViews(gray=1.5)
    with pytest.raises(ValueError, match="scale"):
        ImageViews(scale=(0.0, 1.0))
    with pytest.raises(ValueError, match="hue"):
        ImageViews(hue=0.7)
    with pytest.raises(ValueError, match="blur_kernel"):
        ImageViews(blur_kernel=4)
    views = ImageViews()
    with pytest.raises(ValueError, match="params"):
        views.apply(torch.rand(3, 1, 8, 8), views.sample(2))


def test_views_refuse_images_outside_the_unit_range():
    from contrastive_tutorial.views import ImageViews, grayscale

    views = ImageViews(generator=torch.Generator().manual_seed(0))
    pixels = torch.rand(2, 3, 8, 8)
    assert views(pixels).shape == (2, 3, 8, 8) and views((pixels * 255).to(torch.uint8)).shape == (2, 3, 8, 8)
    with pytest.raises(ValueError, match=r"\[0, 1\].*divide floats in \[0, 255\] by 255"):
        views(pixels * 255)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        views(pixels * 2 - 1)  # normalised to [-1, 1]
    with pytest.raises(ValueError, match="NaN or inf"):
        views(torch.full((1, 3, 8, 8), float("nan")))
    with pytest.raises(ValueError, match="1 or 3"):
        grayscale(torch.rand(1, 4, 8, 8))
