"""One small training loop for every chapter: device, mixed precision, progress, history."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["History", "fit"]


class History(list):
    """A list of per-epoch records (dicts); ``history["loss"]`` gives one column."""

    def __getitem__(self, key):  # type: ignore[override]
        if isinstance(key, str):
            return [record.get(key) for record in self]
        return super().__getitem__(key)

    def to_frame(self):
        import pandas as pd

        return pd.DataFrame(list(self))


def _autocast(device: torch.device, amp: bool | None):
    """bf16 autocast on CUDA by default; off on CPU unless asked for."""
    if amp is None:
        amp = device.type == "cuda"
    return torch.autocast(device.type, dtype=torch.bfloat16) if amp else nullcontext()


def fit(
    model: nn.Module,
    loss_fn: Callable[[nn.Module, Any], Tensor],
    batches: Callable[[], Iterable[Any]] | Iterable[Any],
    optimizer: torch.optim.Optimizer,
    epochs: int,
    *,
    device: torch.device | str | None = None,
    amp: bool | None = None,
    scheduler: Any = None,
    on_epoch_end: Callable[[int, nn.Module], dict[str, float]] | None = None,
    progress: bool = True,
) -> History:
    """Train ``model`` for ``epochs`` and return the per-epoch history.

    Args:
        loss_fn: ``loss_fn(model, batch) -> scalar loss``; it moves the batch to the device.
        batches: a re-iterable (e.g. a ``DataLoader``) or a function returning a fresh
            iterable each epoch.
        amp: bf16 autocast; default on for CUDA, off for CPU.
        on_epoch_end: returns extra metrics to record (e.g. a validation score).
        progress: show a progress bar over epochs that refreshes at most every 10 s.

    Each record holds ``epoch``, mean ``loss``, ``seconds`` and whatever ``on_epoch_end`` adds.
    A non-finite loss stops training with an error naming the epoch and step.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    device = torch.device(device) if device is not None else next(model.parameters()).device
    model.to(device).train()
    history = History()
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=epochs, desc="epochs", mininterval=10, file=sys.stdout, dynamic_ncols=False, ncols=80)
    for epoch in range(1, epochs + 1):
        start, total, steps = time.perf_counter(), torch.zeros((), device=device), 0
        for batch in batches() if callable(batches) else batches:
            with _autocast(device, amp):
                loss = loss_fn(model, batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            total += loss.detach().float()
            steps += 1
        if steps == 0:
            raise ValueError("batches yielded no batch")
        mean_loss = float(total) / steps
        if not torch.isfinite(torch.tensor(mean_loss)):
            raise FloatingPointError(f"loss became {mean_loss} in epoch {epoch}")
        record = {"epoch": epoch, "loss": mean_loss, "seconds": time.perf_counter() - start}
        if on_epoch_end is not None:
            record.update(on_epoch_end(epoch, model))
            model.train()
        history.append(record)
        if bar is not None:
            bar.set_postfix(loss=f"{mean_loss:.3f}", refresh=False)
            bar.update(1)
    if bar is not None:
        bar.close()
    return history
