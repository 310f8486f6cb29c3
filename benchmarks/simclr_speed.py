"""End-to-end SimCLR training throughput: batched views on the device against a per-image DataLoader.

Every path trains the same model, ``methods.simclr.SimCLR`` with the CIFAR-stem ResNet-18 and
the projection head (``--small`` swaps in the SmallCNN), on two views of each image of a batch
of ``--batch-size`` 32x32 RGB images (random pixels; throughput does not depend on them),
with NT-Xent, AdamW (fused on CUDA), bf16 autocast and channels-last memory on GPUs:

- model only: the same two precomputed views every step: the ceiling, no augmentation at all;
- batched: the training images live on the device as uint8; each step indexes a batch and
  makes both views with ``views.ImageViews.simclr()`` on the device (parameters drawn there);
- per-image: torchvision's usual PIL pipeline (RandomResizedCrop, flip, ColorJitter with
  p = 0.8, RandomGrayscale, ToTensor) in a DataLoader with ``--workers`` processes and
  pinned memory, two views per image, as most SimCLR code does; needs torchvision.
- ``--compile`` also times the batched path with the model under ``torch.compile``.

Prints images per second (each image gives two views) and the ratio of each path to the
per-image pipeline measured in the same run. ``--smoke`` runs tiny sizes on the CPU.

    python benchmarks/simclr_speed.py --workers 8 --compile      # GPU
    python benchmarks/simclr_speed.py --smoke
"""

from __future__ import annotations

import argparse
import platform
import time

import torch


def autocast(device):
    """The package's precision rule (bf16 from compute capability 8.0, fp16 below; fp32 on CPU)."""
    from contrastive_tutorial.train import precision

    return precision(device).autocast()


def new_model(args, device, compile: bool = False):
    from contrastive_tutorial.encoders import ResNet18, SmallCNN
    from contrastive_tutorial.methods.simclr import SimCLR

    torch.manual_seed(0)
    encoder, dim = (SmallCNN(3, 64), 64) if args.small else (ResNet18(3), ResNet18.feature_dim)
    model = SimCLR(encoder, dim, projection_dim=128, temperature=0.5).to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=device.type == "cuda")
    loss_fn = torch.compile(model.loss) if compile else model.loss

    def step(x1, x2):
        if device.type == "cuda":
            x1, x2 = (x.contiguous(memory_format=torch.channels_last) for x in (x1, x2))
        with autocast(device):
            loss = loss_fn(x1, x2)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def timed(run_step, steps: int, warmup: int, device) -> float:
    """Seconds per step after ``warmup`` steps."""
    for _ in range(warmup):
        run_step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        run_step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps


def model_only(images, args, device) -> float:
    from contrastive_tutorial.views import ImageViews

    views = ImageViews.simclr(strength=0.5)
    batch = images[: args.batch_size]
    x1, x2 = views(batch), views(batch)
    step = new_model(args, device)
    return timed(lambda: step(x1, x2), args.steps, args.warmup, device)


def batched(images, args, device, compile: bool = False) -> float:
    from contrastive_tutorial.views import ImageViews

    views = ImageViews.simclr(strength=0.5)
    step = new_model(args, device, compile)
    order = torch.randperm(len(images), device=device)
    position = [0]

    def run_step():
        start = position[0] % (len(images) - args.batch_size)
        position[0] += args.batch_size
        batch = images[order[start : start + args.batch_size]]
        step(views(batch), views(batch))

    return timed(run_step, args.steps, args.warmup, device)


class TwoViews(torch.utils.data.Dataset):
    """Two torchvision views of each PIL image (the usual per-image SimCLR pipeline)."""

    def __init__(self, images) -> None:
        from torchvision import transforms as T

        self.images = images
        jitter = T.ColorJitter(0.4, 0.4, 0.4, 0.1)  # strength 0.5, as ImageViews.simclr(0.5)
        self.transform = T.Compose([
            T.RandomResizedCrop(32, scale=(0.08, 1.0)), T.RandomHorizontalFlip(),
            T.RandomApply([jitter], p=0.8), T.RandomGrayscale(p=0.2), T.ToTensor(),
        ])

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        from PIL import Image

        image = Image.fromarray(self.images[i])
        return self.transform(image), self.transform(image)


def per_image(images, args, device) -> float:
    pil_ready = images.permute(0, 2, 3, 1).cpu().numpy()
    loader = torch.utils.data.DataLoader(
        TwoViews(pil_ready), batch_size=args.batch_size, shuffle=True, drop_last=True,
        num_workers=args.workers, pin_memory=device.type == "cuda", persistent_workers=args.workers > 0,
    )
    step = new_model(args, device)
    batches = iter(())

    def run_step():
        nonlocal batches
        try:
            x1, x2 = next(batches)
        except StopIteration:
            batches = iter(loader)
            x1, x2 = next(batches)
        step(x1.to(device, non_blocking=True), x2.to(device, non_blocking=True))

    return timed(run_step, args.steps, args.warmup, device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--images", type=int, default=50_000, help="training set size (CIFAR-10's)")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--workers", type=int, default=8, help="DataLoader workers of the per-image path")
    parser.add_argument("--compile", action="store_true", help="also time the batched path under torch.compile")
    parser.add_argument("--no-cudnn-benchmark", action="store_true", help="keep cuDNN's default convolution choice")
    parser.add_argument("--small", action="store_true", help="SmallCNN instead of ResNet-18")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes on the CPU (test suite)")
    args = parser.parse_args()
    if args.smoke:
        args.batch_size, args.images, args.steps, args.warmup, args.workers, args.small = 16, 64, 2, 1, 0, True
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.backends.cudnn.benchmark = not args.no_cudnn_benchmark  # fixed shapes: let cuDNN pick its fastest convolutions
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (args.images, 3, 32, 32), dtype=torch.uint8, generator=generator).to(device)
    name = torch.cuda.get_device_name() if device.type == "cuda" else platform.processor() or "cpu"
    print(f"device: {name}; torch {torch.__version__}; {'SmallCNN' if args.small else 'ResNet-18'}; "
          f"batch {args.batch_size} images (two views each); {args.steps} timed steps; "
          f"per-image workers {args.workers}; cudnn.benchmark {torch.backends.cudnn.benchmark}")
    paths = {"model only": lambda: model_only(images, args, device), "batched": lambda: batched(images, args, device)}
    if args.compile:
        paths["batched, compiled"] = lambda: batched(images, args, device, compile=True)
    try:
        import torchvision  # noqa: F401

        paths["per-image DataLoader"] = lambda: per_image(images, args, device)
    except Exception as error:  # torchvision missing or not matching this torch build
        print(f"per-image path skipped: torchvision unavailable ({type(error).__name__})")
    results = {}
    for label, run in paths.items():
        seconds = run()
        results[label] = args.batch_size / seconds
        print(f"{label:>21}: {1000 * seconds:8.1f} ms/step  {results[label]:9.0f} images/s", flush=True)
    if "per-image DataLoader" in results:
        for label, rate in results.items():
            if label != "per-image DataLoader":
                print(f"ratio {label} / per-image: {rate / results['per-image DataLoader']:.2f}x")


if __name__ == "__main__":
    main()
