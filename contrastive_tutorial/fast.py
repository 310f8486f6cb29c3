"""Fast training steps on a GPU: fixed shapes, a compiled model, the whole step as one CUDA graph.

An eager training step is a long list of small kernel launches issued one by one from
Python. For a BERT-base encoder at batch 64 the GPU finishes most kernels faster than the
host can issue the next, so the step takes the host's time, not the GPU's. The fast path
takes the host out of the loop:

1. **Fixed shapes.** Every batch is padded to the same length (:func:`fixed_length_batch`),
   so one compiled graph and one captured CUDA graph serve every step.
2. **Compilation.** ``torch.compile`` fuses the element-wise work between the matrix
   products (fewer, larger kernels); attention runs through PyTorch's fused SDPA kernels.
3. **One CUDA graph per step.** :class:`CapturedStep` records forward, backward and the
   optimizer step once and replays them with a single launch per step; each step's inputs
   are copied into the recorded buffers. Nothing in the step reads a value back to the host:
   the losses skip their value checks while a graph is captured
   (:func:`~contrastive_tutorial.losses._checking_values`; they run in the eager warm-up on
   the same inputs), and the optimizer keeps its step count on the GPU (``capturable=True``).

Dropout stays random: the default CUDA generator is registered with the graph, which
advances its offset at every replay, so each replay draws new masks.

Chapter "Appendix: large batches across GPUs and beyond memory"; ``benchmarks/simcse_speed.py``
measures the result against a plain Hugging Face loop.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from .losses import simcse_loss
from .train import adam, precision
from .views.text import doubled

__all__ = ["fixed_length_batch", "fast_adamw", "CapturedStep", "attention_kernel", "simcse_step"]


def fixed_length_batch(tokenizer, sentences: Sequence[str], max_length: int) -> dict[str, Tensor]:
    """Token ids and attention mask of ``sentences``, all padded or truncated to ``max_length``."""
    if isinstance(sentences, str) or not sentences:
        raise ValueError("sentences must be a non-empty sequence of strings")
    batch = tokenizer(list(sentences), padding="max_length", truncation=True, max_length=max_length,
                      return_tensors="pt")
    return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}


def fast_adamw(params, lr: float, weight_decay: float = 0.0, device: torch.device | str = "cuda"):
    """AdamW for :class:`CapturedStep`: one fused kernel with its step count on the GPU on CUDA,
    :func:`~contrastive_tutorial.train.adam` elsewhere. The learning rate is constant: a replayed
    graph reads the value it was captured with."""
    if torch.device(device).type == "cuda":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, fused=True, capturable=True)
    return adam(params, lr, weight_decay)


class CapturedStep:
    """One training step, ``loss = step(*inputs)``: ``loss_fn(*inputs)``, backward, ``optimizer.step()``.

    On a CUDA device with ``cuda_graph=True`` the step is captured as a CUDA graph at the first
    call, after ``warmup`` eager steps on a side stream (which compile the model and allocate
    the optimizer's state). Those warm-up steps are undone: parameters and optimizer state are
    restored in place, so the first call trains exactly one step, like every later one. Later
    calls copy their inputs into the captured buffers and replay the graph. Inputs must keep
    the shapes and dtypes of the first call.

    The returned loss is a device tensor (no synchronisation); with a graph it is the same
    tensor every step, overwritten by the next replay: read or clone it before then.

    Elsewhere (CPU, or ``cuda_graph=False``) the step runs eagerly: the same arithmetic.

    Args:
        loss_fn: inputs -> scalar loss; ``torch.compile`` it first for fused kernels.
        optimizer: over the trained parameters; on CUDA it must be ``capturable`` (see
            :func:`fast_adamw`).
        cuda_graph: capture the step where the inputs live on a CUDA device.
        warmup: eager steps before the capture (at least 1; compilation needs about 3).
    """

    def __init__(self, loss_fn: Callable[..., Tensor], optimizer: torch.optim.Optimizer,
                 cuda_graph: bool = True, warmup: int = 3, scaler: torch.amp.GradScaler | None = None) -> None:
        if warmup < 1:
            raise ValueError(f"warmup must be >= 1, got {warmup}")
        self.loss_fn, self.optimizer, self.scaler = loss_fn, optimizer, scaler
        self.cuda_graph, self.warmup = cuda_graph, warmup
        self.graph: torch.cuda.CUDAGraph | None = None
        self._inputs: tuple[Tensor, ...] = ()
        self._loss: Tensor | None = None

    def _eager(self, *inputs: Tensor) -> Tensor:
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.loss_fn(*inputs)
        if self.scaler is None:
            loss.backward()
            self.optimizer.step()
        else:  # fp16: scale the loss so small gradients survive, skip steps with inf gradients
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        return loss.detach()

    def _params(self) -> list[Tensor]:
        return [p for group in self.optimizer.param_groups for p in group["params"]]

    def _capture(self, inputs: tuple[Tensor, ...]) -> None:
        for group in self.optimizer.param_groups:
            if not group.get("capturable", False):
                raise ValueError("optimizer must be created with capturable=True to be captured (see fast_adamw)")
        saved = [p.detach().clone() for p in self._params()]
        saved_state = {p: {k: v.clone() for k, v in s.items() if torch.is_tensor(v)}
                       for p, s in self.optimizer.state.items()}
        self._inputs = tuple(x.clone() for x in inputs)
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(self.warmup):
                self._eager(*self._inputs)
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        self.optimizer.zero_grad(set_to_none=True)
        with torch.cuda.graph(self.graph):
            self._loss = self._eager(*self._inputs)
        with torch.no_grad():  # undo the warm-up in place (the graph holds these addresses)
            for p, value in zip(self._params(), saved):
                p.copy_(value)
            for p, state in self.optimizer.state.items():
                before = saved_state.get(p, {})
                for k, v in state.items():
                    if torch.is_tensor(v) and k in before:
                        v.copy_(before[k])
                    elif torch.is_tensor(v):
                        v.zero_()

    def __call__(self, *inputs: Tensor) -> Tensor:
        use_graph = self.cuda_graph and self.scaler is None and all(x.is_cuda for x in inputs)
        if not use_graph:
            return self._eager(*inputs)
        if self.graph is None:
            self._capture(inputs)
        else:
            for buffer, x in zip(self._inputs, inputs, strict=True):
                if buffer.shape != x.shape or buffer.dtype != x.dtype:
                    raise ValueError(f"inputs must keep the captured shape {tuple(buffer.shape)} and dtype "
                                     f"{buffer.dtype}, got {tuple(x.shape)} {x.dtype}")
        for buffer, x in zip(self._inputs, inputs, strict=True):
            buffer.copy_(x, non_blocking=True)
        self.graph.replay()
        return self._loss


def attention_kernel(device: torch.device | str, dtype: torch.dtype | None, attention: str | None = "auto") -> str | None:
    """The ``F.scaled_dot_product_attention`` kernel for a device and autocast type.

    ``"auto"`` picks the memory-efficient kernel (it accepts the padding mask and was the
    fastest for short sentences in ``benchmarks/simcse_speed.py``) where it runs the type:
    fp16 and fp32 from compute capability 5.0, bf16 only from 8.0 (below that it refuses
    bf16, so PyTorch's own choice is kept). Off CUDA, ``None`` (PyTorch chooses).
    """
    kernels = ("efficient", "flash", "cudnn", "math")
    if attention is not None and attention != "auto" and attention not in kernels:
        raise ValueError(f"attention must be 'auto', None or one of {sorted(kernels)}, got {attention!r}")
    device = torch.device(device)
    if device.type != "cuda" or attention is None:
        return None
    if attention != "auto":
        return attention
    major, _ = torch.cuda.get_device_capability(device)
    if dtype == torch.bfloat16 and major < 8:
        return None
    return "efficient"


def simcse_step(encoder, optimizer: torch.optim.Optimizer, temperature: float = 0.05, *,
                compile: bool = True, cuda_graph: bool = True, amp: bool | str | None = None,
                attention: str | None = "auto") -> CapturedStep:
    """Unsupervised SimCSE's fast training step for ``encoder`` (a :class:`~contrastive_tutorial.encoders.TextEncoder`).

    ``step(input_ids, attention_mask)`` (from :func:`fixed_length_batch`, on the encoder's
    device) encodes the doubled batch in one pass (two dropout views), takes
    :func:`~contrastive_tutorial.losses.simcse_loss` at ``temperature``, backpropagates and
    steps the optimizer. ``amp`` follows :func:`~contrastive_tutorial.train.precision`: bf16
    from compute capability 8.0, fp16 below it (T4, V100). An fp16 step needs a ``GradScaler``,
    whose decisions (skip a step with inf gradients, change the scale) are taken on the host,
    so fp16 steps run compiled but eagerly, without a CUDA graph. The loss is computed in
    float32 either way. ``attention`` picks the kernel of
    ``F.scaled_dot_product_attention`` (:func:`attention_kernel`).
    """
    from torch.nn.attention import SDPBackend, sdpa_kernel

    backends = {"efficient": SDPBackend.EFFICIENT_ATTENTION, "flash": SDPBackend.FLASH_ATTENTION,
                "cudnn": SDPBackend.CUDNN_ATTENTION, "math": SDPBackend.MATH}
    device = next(encoder.parameters()).device
    prec = precision(device, amp)
    kernel_name = attention_kernel(device, prec.dtype, attention)
    kernel = (lambda: sdpa_kernel(backends[kernel_name])) if kernel_name else contextlib.nullcontext
    scaler = prec.scaler()

    def loss_fn(input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        with prec.autocast(), kernel():
            z1, z2 = encoder(doubled({"input_ids": input_ids, "attention_mask": attention_mask})).chunk(2)
        return simcse_loss(z1, z2, temperature)

    return CapturedStep(torch.compile(loss_fn) if compile else loss_fn, optimizer, cuda_graph=cuda_graph,
                        scaler=scaler)
