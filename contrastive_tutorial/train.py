"""One training layer for every chapter: a method object, one ``train`` loop, and its helpers.

A **method** is a small ``nn.Module`` that owns its model(s) and hyper-parameters (the
temperature included) and answers two questions:

- ``method.loss(*batch)``: the loss of one batch (a tuple is spread into arguments);
- ``method.after_step()`` (optional): what happens after an optimiser step (momentum
  updates of a target network, for example).

A method may instead define ``method.backward(*batch, scale=1.0)``, which backpropagates
``scale * loss`` itself and returns the detached loss: gradient caching
(:func:`~contrastive_tutorial.scale.cached_backward`) for batches larger than memory.

:func:`train` drives every chapter, vision and text alike, with the pieces below:

- :func:`precision`: bf16 autocast on GPUs of compute capability 8.0 and newer, fp16 autocast
  with a ``GradScaler`` below that (T4, V100), float32 on the CPU unless asked;
- :class:`Batches`: shuffled batches of indices, full batches only by default, optionally
  without duplicate keys in a batch; resumable in the middle of an epoch;
- :func:`linear_schedule`: linear warm-up and linear decay to zero;
- :func:`eval_mode`: evaluation mode for a block, restored afterwards even on an error;
- progress with a total and an ETA (:class:`Progress`), and the expected duration printed
  after the first steps;
- checkpoints (model, optimiser, scheduler, scaler, RNG states, step, history) every few
  minutes, and resuming from them (:class:`~contrastive_tutorial.runs.RunStore` keeps them).

Chapter "Appendix: large batches across GPUs and beyond memory" shows the loop; every
chapter trains through it.
"""

from __future__ import annotations

import math
import os
import random
import sys
import time
import warnings
from collections import deque
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from . import checks

__all__ = [
    "History",
    "Precision",
    "precision",
    "adam",
    "linear_schedule",
    "eval_mode",
    "Batches",
    "Progress",
    "train",
]


class History(list):
    """A list of records (dicts); ``history["loss"]`` gives one column."""

    def __getitem__(self, key):  # type: ignore[override]
        if isinstance(key, str):
            return [record.get(key) for record in self]
        return super().__getitem__(key)

    def to_frame(self):
        import pandas as pd

        return pd.DataFrame(list(self))


# --------------------------------------------------------------------------- precision
@dataclass(frozen=True)
class Precision:
    """How a device computes a training step: ``dtype`` is the autocast type (``None``: float32).

    ``autocast()`` is the context to run the forward pass in; ``scaler()`` a fresh
    ``torch.amp.GradScaler`` for fp16 (whose small range needs the loss scaled before
    backward) and ``None`` otherwise.
    """

    device_type: str
    dtype: torch.dtype | None

    @property
    def name(self) -> str:
        return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.dtype]

    def autocast(self):
        return torch.autocast(self.device_type, dtype=self.dtype) if self.dtype is not None else nullcontext()

    def scaler(self) -> torch.amp.GradScaler | None:
        return torch.amp.GradScaler(self.device_type) if self.dtype == torch.float16 else None


def precision(device: torch.device | str, amp: bool | str | None = None) -> Precision:
    """The precision rule, decided once for the whole package.

    ``amp=None`` (the default) follows the device: on CUDA, bf16 where the compute capability
    is at least 8.0 (A100, H100, RTX 30xx and newer) and fp16 with a ``GradScaler`` below it
    (Colab's T4 is 7.5: ``torch.cuda.is_bf16_supported()`` answers True there, but bf16 is
    emulated, so convolutions leave cuDNN and matrix products run far slower than fp16);
    float32 elsewhere. ``amp=False`` or ``"fp32"`` forces float32, ``"bf16"``/``"fp16"`` that
    type (also on the CPU, e.g. to test), and ``amp=True`` mixed precision by the same rule,
    bf16 on a CPU.
    """
    device = torch.device(device)
    if amp not in (None, True, False, "fp32", "bf16", "fp16"):
        raise ValueError(f"amp must be None, True, False, 'fp32', 'bf16' or 'fp16', got {amp!r}")
    if amp is False or amp == "fp32":
        return Precision(device.type, None)
    if amp in ("bf16", "fp16"):
        return Precision(device.type, torch.bfloat16 if amp == "bf16" else torch.float16)
    if device.type == "cuda":
        major, _ = torch.cuda.get_device_capability(device)
        return Precision("cuda", torch.bfloat16 if major >= 8 else torch.float16)
    return Precision(device.type, torch.bfloat16 if amp is True else None)


def adam(params, lr: float, weight_decay: float = 0.0, *, decoupled: bool = True) -> torch.optim.Optimizer:
    """Adam for every chapter, through PyTorch's fused kernel.

    ``decoupled=True`` is AdamW (:math:`\\theta \\leftarrow \\theta - \\eta\\lambda\\theta` apart from
    the adaptive step); ``False`` is Adam with :math:`\\lambda\\theta` added to the gradient
    (L2 regularisation). ``params`` may be parameter groups. The fused kernel updates every
    parameter in one multi-threaded pass instead of a Python loop over tensors: the same
    update up to floating-point rounding, and for MiniLM's 22M parameters on two CPU cores
    14 instead of 103 ms per step (a fine-tuning step at batch 16 takes about 350 ms there).
    """
    optimizer = torch.optim.AdamW if decoupled else torch.optim.Adam
    return optimizer(params, lr=lr, weight_decay=weight_decay, fused=True)


def linear_schedule(optimizer: torch.optim.Optimizer, total_steps: int, warmup_steps: int = 0):
    """Learning rate factor :math:`s/w` for the first ``warmup_steps`` steps, then a linear
    decay :math:`\\max(0, 1 - s/T)` to zero at ``total_steps`` (Hugging Face's ``linear``
    schedule; SimCSE and PromptBERT train with it and no warm-up)."""
    if total_steps < 1:
        raise ValueError(f"total_steps must be >= 1, got {total_steps}")
    if not 0 <= warmup_steps < total_steps:
        raise ValueError(f"warmup_steps must lie in [0, total_steps={total_steps}), got {warmup_steps}")

    def factor(step: int) -> float:
        if step < warmup_steps:
            return step / warmup_steps
        if warmup_steps:
            return max(0.0, (total_steps - step) / (total_steps - warmup_steps))
        return max(0.0, 1 - step / total_steps)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


@contextmanager
def eval_mode(*modules: nn.Module, training: bool = False) -> Iterator[None]:
    """Evaluation mode (no dropout, batch-norm running statistics) inside the block; each
    module's own mode is restored afterwards, also when the block raises. ``training=True``
    is the reverse: training mode (dropout on) for the block, e.g. to measure dropout views."""
    modes = [(m, m.training) for module in modules for m in module.modules()]
    for module in modules:
        module.train(training)
    try:
        yield
    finally:
        for m, mode in modes:
            m.training = mode


# --------------------------------------------------------------------------- batches
Generator = np.random.Generator | torch.Generator


def _get_state(rng: Generator) -> Any:
    return rng.get_state().clone() if isinstance(rng, torch.Generator) else rng.bit_generator.state


def _set_state(rng: Generator, state: Any) -> None:
    if isinstance(rng, torch.Generator):
        rng.set_state(state)
    else:
        rng.bit_generator.state = state


class Batches:
    """Shuffled batches over ``n`` examples; ``batches()`` is one pass (an epoch), ``len`` its length.

    Each pass draws a fresh order from ``generator`` (a NumPy ``Generator``, the default one
    seeded with ``seed``, or a ``torch.Generator``: ``torch.randperm``) and cuts it into
    batches of ``batch_size`` indices, dropping the ragged last batch unless
    ``drop_last=False`` (contrastive losses need full batches: their negatives are the batch).
    ``collate(indices)`` turns the indices into the batch the method takes (default: the
    list of indices).

    ``keys`` (one hashable per example, e.g. the sentence) keeps a batch free of duplicates,
    as sentence-transformers' no-duplicates sampler: an example whose key is already in the
    batch waits for the next one. In unsupervised SimCSE a repeated sentence is its own
    false negative. With ``keys``, ``len`` is an upper bound: the last examples of a pass may
    share keys and not fill a batch.

    ``state_dict()`` holds the generator's state at the start of the current pass, so
    :func:`train` resumes in the middle of an epoch by replaying the pass and skipping the
    batches already trained on (``collate`` may draw from ``self.generator`` too: the replay
    draws the same numbers).
    """

    def __init__(
        self,
        n: int,
        batch_size: int,
        *,
        seed: int = 0,
        generator: Generator | None = None,
        drop_last: bool = True,
        keys: Sequence[Hashable] | None = None,
        collate: Callable[[list[int]], Any] | None = None,
    ) -> None:
        batch_size = checks.count(batch_size, "batch_size")
        if n < batch_size and drop_last:
            raise ValueError(f"batch_size ({batch_size}) is larger than the data ({n} examples)")
        if n < 1:
            raise ValueError("the data must hold at least one example")
        if keys is not None and len(keys) != n:
            raise ValueError(f"keys must have one entry per example ({n}), got {len(keys)}")
        self.n, self.batch_size, self.drop_last, self.keys = n, batch_size, drop_last, keys
        self.generator = generator if generator is not None else np.random.default_rng(seed)
        self.collate = collate
        self._start = _get_state(self.generator)

    def __len__(self) -> int:
        return self.n // self.batch_size if self.drop_last else math.ceil(self.n / self.batch_size)

    def _order(self) -> list[int]:
        if isinstance(self.generator, torch.Generator):
            return torch.randperm(self.n, generator=self.generator).tolist()
        return self.generator.permutation(self.n).tolist()

    def _cut(self, order: list[int]) -> Iterator[list[int]]:
        if self.keys is None:
            for start in range(0, len(order), self.batch_size):
                idx = order[start : start + self.batch_size]
                if len(idx) == self.batch_size or not self.drop_last:
                    yield idx
            return
        waiting: deque[int] = deque()
        pending = iter(order)
        while True:
            idx, seen = [], set()
            for queue in (waiting, None):
                source = (waiting.popleft() for _ in range(len(waiting))) if queue is not None else pending
                for i in source:
                    if self.keys[i] in seen:
                        waiting.append(i)
                        continue
                    idx.append(i)
                    seen.add(self.keys[i])
                    if len(idx) == self.batch_size:
                        break
                if len(idx) == self.batch_size:
                    break
            if len(idx) < self.batch_size and (self.drop_last or not idx):
                return
            yield idx

    def __call__(self) -> Iterator[Any]:
        self._start = _get_state(self.generator)
        for idx in self._cut(self._order()):
            yield self.collate(idx) if self.collate is not None else idx

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self._start}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        _set_state(self.generator, state["generator"])


# --------------------------------------------------------------------------- progress
def _in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


class Progress:
    """A progress bar with a total and an ETA: a widget in Jupyter when ipywidgets is installed
    (Colab), text otherwise (the book's static pages), refreshed at most every ``mininterval`` s
    and shown only once ``delay`` seconds have passed (so that short runs stay quiet)."""

    def __init__(self, total: int | None, desc: str = "steps", mininterval: float = 10.0, delay: float = 0.0) -> None:
        bar = None
        if _in_notebook():
            try:
                import ipywidgets  # noqa: F401
                from tqdm.notebook import tqdm as bar
            except ImportError:
                bar = None
        if bar is None:
            from tqdm import tqdm as bar

            self._bar = bar(total=total, desc=desc, mininterval=mininterval, delay=delay, file=sys.stdout, ncols=80)
        else:
            self._bar = bar(total=total, desc=desc, mininterval=mininterval, delay=delay)

    def update(self, n: int = 1, **postfix: str) -> None:
        if postfix:
            self._bar.set_postfix(postfix, refresh=False)
        self._bar.update(n)

    def write(self, text: str) -> None:
        self._bar.write(text, file=sys.stdout)

    def close(self) -> None:
        self._bar.close()


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


# --------------------------------------------------------------------------- checkpoints
def _rng_states() -> dict[str, Any]:
    return {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def _set_rng_states(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _save(path: Path, payload: dict[str, Any]) -> None:
    """Write atomically: a disconnect during the write leaves the previous checkpoint intact."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    torch.save(payload, partial)
    os.replace(partial, path)


# --------------------------------------------------------------------------- the loop
def _check_finite(value: float, step: int) -> None:
    if not math.isfinite(value):
        raise FloatingPointError(f"the loss became {value} at step {step}; training stopped before "
                                 "this step changed the weights (lower the learning rate, or look for "
                                 "NaN/inf in the inputs)")


def _check_optimizer(method: nn.Module, optimizer: torch.optim.Optimizer) -> None:
    """The optimiser must update this method's parameters, at a positive learning rate."""
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}")
    own = {id(p) for p in method.parameters()}
    foreign = sum(id(p) not in own for group in optimizer.param_groups for p in group["params"])
    if foreign:
        raise ValueError(f"optimizer holds {foreign} parameter(s) that are not the method's: was it built on another model?")
    for i, group in enumerate(optimizer.param_groups):
        lr = group.get("initial_lr", group["lr"])  # a warm-up schedule starts at 0 on purpose
        if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
            raise ValueError(f"optimizer group {i} has learning rate {lr!r}: nothing would be learned")


def _check_loss(loss: Any, method: nn.Module) -> None:
    if not isinstance(loss, Tensor) or loss.numel() != 1:
        shape = tuple(loss.shape) if isinstance(loss, Tensor) else type(loss).__name__
        raise TypeError(f"{type(method).__name__}.loss must return a scalar tensor (one number), got {shape}")


def _clone_state(module: nn.Module) -> dict[str, Tensor]:
    """A copy of the weights; a tensor shared by two submodules (one model under two templates) is copied once."""
    copies: dict[tuple, Tensor] = {}
    state = {}
    for k, v in module.state_dict().items():
        key = (v.data_ptr(), v.shape, v.dtype, v.stride())
        if key not in copies:
            copies[key] = v.detach().clone()
        state[k] = copies[key]
    return state


def train(
    method: nn.Module,
    batches: Callable[[], Iterable[Any]] | Iterable[Any],
    optimizer: torch.optim.Optimizer,
    *,
    epochs: int | None = None,
    steps: int | None = None,
    scheduler: Any = None,
    device: torch.device | str | None = None,
    amp: bool | str | None = None,
    clip_grad_norm: float | None = None,
    evaluate: Callable[[], dict[str, float]] | None = None,
    eval_every: int | None = None,
    keep: str = "last",
    on_epoch_end: Callable[[int], dict[str, float]] | None = None,
    generators: Sequence[Generator] = (),
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every: float = 300.0,
    progress: bool | None = None,
    desc: str = "steps",
) -> History:
    """Train ``method`` and return its history: the one loop of the book.

    Args:
        method: an ``nn.Module`` with ``loss(*batch)`` (and optionally ``after_step()``, or
            ``backward(*batch, scale=...)`` instead of ``loss``); see the module docstring.
        batches: a function returning one epoch's batches per call (e.g. :class:`Batches`)
            or a re-iterable such as a ``DataLoader``.
        optimizer: over the trained parameters (:func:`adam`).
        epochs, steps: train for ``epochs`` passes, or ``steps`` optimiser steps in all
            (across passes), whichever ends first; at least one of them.
        scheduler: stepped after every optimiser step (:func:`linear_schedule`).
        amp: the precision (:func:`precision`); default by the device.
        clip_grad_norm: clip the global gradient norm before each step (the Hugging Face
            Trainer's default is 1.0, which the official SimCSE and PromptBERT runs use).
        evaluate: ``evaluate() -> {metric: value}``, run every ``eval_every`` steps, at step 0
            (the starting point) and at the end of each epoch; it sets the modes it needs
            (:func:`eval_mode`) and the method is put back in training mode after it.
        eval_every: steps between evaluations; without it, one record per epoch.
        keep: ``"last"`` keeps the final weights; ``"best:METRIC"`` restores those of the
            evaluation with the highest ``METRIC`` at the end (SimCSE keeps the best STS-B
            dev checkpoint).
        on_epoch_end: ``on_epoch_end(epoch) -> extra metrics`` recorded at each epoch's end.
        generators: random generators the batches or views draw from (besides Python's,
            NumPy's and torch's global ones), saved in checkpoints.
        checkpoint: a file to save the whole training state to every ``checkpoint_every``
            seconds; when it exists at the start, training resumes from it. At the end it
            keeps the final weights (after ``keep``) and the history only, and a finished
            run returns them without training (:func:`~contrastive_tutorial.runs.checkpoint`
            names the file in the run store). With :class:`Batches`, a
            resumed run draws the same batches and gets the same losses and weights as an
            uninterrupted one.
        progress: a bar over steps with a total and an ETA, and the expected duration
            printed after the first steps (on rank 0 only under ``torchrun``). ``None`` (the
            default) shows both only for runs that last: the bar appears after 10 s, the
            estimate when more than 30 s remain; ``CT_PROGRESS=0`` turns them off (the book's
            build sets it: a static page has no use for a bar). ``True`` shows them at once,
            ``False`` never (sweeps, tests).

    Under ``torchrun`` (``torch.distributed`` initialised with several processes) every process
    draws the same global batches (same seed), trains on its own equal slice of each
    (:func:`~contrastive_tutorial.scale.shard`), and the gradients are averaged over processes
    after backward, as DDP does; methods gather their embeddings with gradients
    (:func:`~contrastive_tutorial.scale.gathered`), so the loss sees the global batch and one
    step equals the single-process step on the whole batch. Each process keeps its own
    checkpoint (``.rankN`` before the suffix).

    Each record holds ``epoch``, ``step`` (optimiser steps so far), the mean ``loss`` since
    the previous record (NaN at step 0), ``seconds`` of training since the previous record,
    and the metrics. A non-finite loss stops training at once with an error naming the step,
    before the weights are touched.
    """
    if epochs is None and steps is None:
        raise ValueError("give epochs or steps (or both)")
    for name, value in (("epochs", epochs), ("steps", steps), ("eval_every", eval_every)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise TypeError(f"{name} must be an integer, got {value!r}")
    if epochs is not None and epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    if steps is not None and steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    _check_optimizer(method, optimizer)
    if eval_every is not None and (evaluate is None or eval_every < 1):
        raise ValueError("eval_every needs an evaluate function and must be >= 1")
    best_metric = None
    if keep != "last":
        if not keep.startswith("best:") or not keep[5:]:
            raise ValueError(f"keep must be 'last' or 'best:METRIC', got {keep!r}")
        if evaluate is None:
            raise ValueError("keep='best:...' needs an evaluate function")
        best_metric = keep[5:]
    if clip_grad_norm is not None and not clip_grad_norm > 0:
        raise ValueError(f"clip_grad_norm must be > 0, got {clip_grad_norm}")
    if checkpoint is not None and not hasattr(batches, "state_dict"):
        raise ValueError("checkpoint needs batches that can save their position (contrastive_tutorial.train.Batches)")
    from .scale import average_gradients, shard, world

    rank, world_size = world()
    if world_size > 1:  # data parallel: this process trains on its slice of every global batch
        progress = progress if rank == 0 else False
        if checkpoint is not None:
            checkpoint = Path(checkpoint).with_suffix(f".rank{rank}{Path(checkpoint).suffix}")
    device = torch.device(device) if device is not None else next(method.parameters()).device
    method.to(device).train()
    prec = precision(device, amp)
    scaler = prec.scaler()
    params = [p for group in optimizer.param_groups for p in group["params"]]
    per_epoch = len(batches) if hasattr(batches, "__len__") else None
    total = steps
    if epochs is not None and per_epoch is not None:
        total = epochs * per_epoch if steps is None else min(steps, epochs * per_epoch)

    history = History()
    best: dict[str, Any] = {"score": -math.inf, "state": None}
    state = {"step": 0, "epoch": 1, "in_epoch": 0, "total": 0.0, "count": 0, "seconds": 0.0}
    path = Path(checkpoint) if checkpoint is not None else None

    def snapshot() -> None:
        _save(path, {
            "finished": False, "state": dict(state), "history": list(history), "best": best,
            "method": method.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict() if scheduler is not None else None,
            "scaler": scaler.state_dict() if scaler is not None else None,
            "rng": _rng_states(), "generators": [_get_state(g) for g in generators],
            "batches": batches.state_dict(),
        })

    resumed = None
    if path is not None and path.exists():
        resumed = torch.load(path, map_location=device, weights_only=False)
        method.load_state_dict(resumed["method"])
        if resumed["finished"]:  # a finished run: its final weights and history, no training
            history.extend(resumed["history"])
            return history
        optimizer.load_state_dict(resumed["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(resumed["scheduler"])
        if scaler is not None and resumed["scaler"] is not None:
            scaler.load_state_dict(resumed["scaler"])
        history.extend(resumed["history"])
        best.update(resumed["best"])
        state.update(resumed["state"])
        _set_rng_states(resumed["rng"])
        for g, s in zip(generators, resumed["generators"], strict=True):
            _set_state(g, s)
        batches.load_state_dict(resumed["batches"])

    def record(extra: dict[str, float]) -> None:
        mean_loss = state["total"] / state["count"] if state["count"] else float("nan")
        row = {"epoch": state["epoch"] if state["step"] else 0, "step": state["step"], "loss": mean_loss,
               "seconds": state["seconds"]}
        if evaluate is not None:
            row.update(evaluate())
            method.train()
            if best_metric is not None:
                if best_metric not in row:
                    raise KeyError(f"keep={keep!r}: {best_metric!r} is not among the metrics {sorted(row)}")
                if row[best_metric] > best["score"]:
                    best["score"] = row[best_metric]
                    best["state"] = _clone_state(method)
        row.update(extra)
        history.append(row)
        state.update(total=0.0, count=0, seconds=0.0)

    backprops_itself = hasattr(method, "backward")

    def one_step(batch: Any) -> float:
        batch = shard(batch, rank, world_size)
        args = batch if isinstance(batch, tuple) else (batch,)
        optimizer.zero_grad(set_to_none=True)
        scale = scaler.get_scale() if scaler is not None else 1.0
        with prec.autocast():  # a method with its own backward (gradient caching) has run it already
            loss = method.backward(*args, scale=scale) if backprops_itself else method.loss(*args)
        _check_loss(loss, method)
        value = float(loss.detach())
        _check_finite(value, state["step"] + 1)
        if not backprops_itself:
            (scaler.scale(loss) if scaler is not None else loss).backward()
        average_gradients(params)
        if scaler is not None:
            scaler.unscale_(optimizer)
        if clip_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(params, clip_grad_norm)
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        if scheduler is not None:
            scheduler.step()
        after = getattr(method, "after_step", None)
        if after is not None:
            after()
        return value

    if progress is None and os.environ.get("CT_PROGRESS", "").strip() == "0":
        progress = False
    bar = Progress(total, desc, delay=0.0 if progress else 10.0) if progress is not False else None
    quiet_below = 0.0 if progress else 30.0  # seconds left under which the estimate is not worth printing
    if bar is not None and state["step"]:
        bar.update(state["step"])
    if resumed is None and eval_every is not None:
        record({})
    last_save = time.perf_counter()
    timed = {"start": time.perf_counter(), "from": state["step"], "done": False}
    done = steps is not None and state["step"] >= steps
    while not done and (epochs is None or state["epoch"] <= epochs):
        start = time.perf_counter()
        skip = state["in_epoch"]  # after a resume: the batches of this pass already trained on
        for batch in batches() if callable(batches) else batches:
            if skip:
                skip -= 1
                continue
            value = one_step(batch)
            # summed in float32, as the loss itself: records stay those of earlier versions bit for bit
            state.update(total=float(np.float32(state["total"]) + np.float32(value)), count=state["count"] + 1,
                         step=state["step"] + 1, in_epoch=state["in_epoch"] + 1)
            if bar is not None:
                bar.update(1, loss=f"{value:.3f}")
                if not timed["done"] and total and time.perf_counter() - timed["start"] > 5:
                    left = (time.perf_counter() - timed["start"]) / (state["step"] - timed["from"]) * (total - state["step"])
                    if left > quiet_below:
                        bar.write(f"{desc}: about {_duration(left)} to go for {total} steps")
                    timed["done"] = True
            if eval_every is not None and state["step"] % eval_every == 0:
                state["seconds"] += time.perf_counter() - start
                record({})
                start = time.perf_counter()
            if path is not None and time.perf_counter() - last_save > checkpoint_every:
                state["seconds"] += time.perf_counter() - start
                snapshot()
                start = last_save = time.perf_counter()
            if steps is not None and state["step"] >= steps:
                done = True
                break
        if not state["in_epoch"]:
            raise ValueError("batches yielded no batch")
        state["seconds"] += time.perf_counter() - start
        extra = on_epoch_end(state["epoch"]) if on_epoch_end is not None else {}
        if on_epoch_end is not None:
            method.train()
        if state["count"] or extra or eval_every is None:
            record(extra)
        state.update(epoch=state["epoch"] + 1, in_epoch=0)
    if bar is not None:
        bar.close()
    if best["state"] is not None:
        method.load_state_dict(best["state"])
    elif best_metric is not None:
        warnings.warn(f"keep={keep!r}: no evaluation gave a finite {best_metric}; the last weights are kept",
                      RuntimeWarning, stacklevel=2)
    if path is not None:  # what a rerun needs: the weights kept and the history
        _save(path, {"finished": True, "history": list(history), "method": method.state_dict()})
    return history
