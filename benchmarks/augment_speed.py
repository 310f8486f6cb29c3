"""Throughput of SimCLR's augmentations: the batched views against the per-image reference.

Two views of every image of a batch of ``--batch-size`` random ``--size`` x ``--size`` RGB
images with SimCLR's CIFAR-10 augmentations (crop 8-100 %, flip, colour jitter of strength
0.5 with p = 0.8, grayscale with p = 0.2; ``--blur`` adds the ImageNet blur):

- per-image: ``views.reference_view`` on PIL images, one image at a time on the CPU, the way
  a torchvision pipeline of PIL transforms runs in a DataLoader worker (``--workers N`` runs
  it in N processes, as a DataLoader would);
- batched: ``ImageViews.apply`` on the whole uint8 batch on ``--device`` (parameters drawn on
  the CPU, images already on the device, as in training).

Prints augmented images per second for each and the ratio batched / per-image, measured in
the same run. ``--smoke`` runs tiny sizes for a few repetitions (what the test suite does).

    python benchmarks/augment_speed.py                       # CPU, 32x32, batch 512
    python benchmarks/augment_speed.py --device cuda --workers 8
    python benchmarks/augment_speed.py --smoke
"""

from __future__ import annotations

import argparse
import platform
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import torch

from contrastive_tutorial.views import ImageViews, reference_view


def _views(blur: bool, seed: int) -> ImageViews:
    return ImageViews.simclr(strength=0.5, blur=blur, generator=torch.Generator().manual_seed(seed))


def _per_image_chunk(args: tuple[np.ndarray, bool, int]) -> int:
    """Two views of each image of a chunk with PIL, one image at a time (a worker's job)."""
    from PIL import Image

    images, blur, seed = args
    views = _views(blur, seed)
    for image in images:
        pil = Image.fromarray(image)
        for _ in range(2):
            reference_view(pil, views.sample(1)[0], views)
    return 2 * len(images)


def per_image(images: np.ndarray, blur: bool, workers: int) -> float:
    """Seconds for two per-image views of every image, split over ``workers`` processes."""
    chunks = [(chunk, blur, i) for i, chunk in enumerate(np.array_split(images, max(workers, 1)))]
    start = time.perf_counter()
    if workers <= 1:
        _per_image_chunk(chunks[0])
    else:
        with ProcessPoolExecutor(workers) as pool:
            list(pool.map(_per_image_chunk, chunks))
    return time.perf_counter() - start


def batched(images: torch.Tensor, blur: bool, repeats: int) -> float:
    """Seconds per batch for two batched views of every image (after a warm-up)."""
    views = _views(blur, 0)

    def sync() -> None:
        if images.device.type == "cuda":
            torch.cuda.synchronize()

    for _ in range(2):
        views(images), views(images)
    sync()
    start = time.perf_counter()
    for _ in range(repeats):
        views(images), views(images)
    sync()
    return (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--workers", type=int, default=1, help="processes for the per-image reference")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--blur", action="store_true")
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    if args.smoke:
        args.size, args.batch_size, args.repeats = 16, 32, 2
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (args.batch_size, args.size, args.size, 3), dtype=torch.uint8, generator=generator)
    per_image_s = per_image(images.numpy(), args.blur, args.workers)
    device_images = images.permute(0, 3, 1, 2).contiguous().to(args.device)
    batched_s = batched(device_images, args.blur, args.repeats)
    n = 2 * args.batch_size
    per_image_rate, batched_rate = n / per_image_s, n / batched_s
    print(f"device {args.device} ({torch.cuda.get_device_name() if args.device.startswith('cuda') else platform.processor() or platform.machine()}), "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"{args.batch_size} images of {args.size}x{args.size}, two views each, blur={args.blur}")
    print(f"per-image reference (PIL, {args.workers} process(es)): {per_image_rate:,.0f} images/s")
    print(f"batched views on {args.device}:                     {batched_rate:,.0f} images/s")
    print(f"ratio batched / per-image: {batched_rate / per_image_rate:.1f}x")


if __name__ == "__main__":
    main()
