"""Large contrastive batches: negatives gathered across processes, and gradient caching
(Gao et al. 2021) for batches larger than memory.

**Across processes.** With data parallelism each process encodes its own slice of the batch.
:func:`gather_with_grad` concatenates every process's embeddings with an all-gather that keeps
autograd, so the loss sees the global batch as negatives and gradients flow back to each
process's own rows.

**Gradient caching.**
InfoNCE couples every example of a batch through its denominator, so the batch cannot simply
be split into micro-batches with accumulated gradients: each micro-batch would see only its own
negatives. Gradient caching keeps the full-batch loss and splits only the encoder's work:

1. encode the batch chunk by chunk *without* building a graph, keeping only the embeddings;
2. compute the loss on the full batch of embeddings and its gradient with respect to them;
3. encode each chunk again *with* a graph and backpropagate that chunk's embedding gradient.

Peak activation memory is that of one chunk; the price is a second forward pass. The random
state (dropout) of each chunk is saved in step 1 and restored in step 3, so both passes see
the same masks and the gradients equal those of the full-batch computation. Batch norm is the
exception: its statistics are per chunk, so networks with batch norm get the gradients of a
chunked computation, not the full batch's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
from torch import Tensor

from . import checks

__all__ = ["world", "gather_with_grad", "gathered", "gathered_objects", "shard", "average_gradients", "cached_backward"]

Batch = Tensor | Mapping[str, Tensor]


def gather_with_grad(x: Tensor) -> Tensor:
    """Every process's rows of ``x`` concatenated in rank order, ``(W * B, D)``, differentiable.

    Returns ``x`` itself when ``torch.distributed`` is not initialised or runs one process.
    The backward pass of the all-gather sums, over processes, the gradients with respect to
    each slice. When every process computes the same loss on the gathered batch, each one's
    own rows therefore receive ``W`` times the single-process gradient, and DDP's averaging of
    parameter gradients over ``W`` processes cancels it exactly: the result equals one process
    training on the concatenated batch (tests/test_scale.py checks it with two processes).
    Without DDP, average the parameter gradients yourself (all-reduce, then divide by ``W``).
    """
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x
    from torch.distributed.nn.functional import all_gather

    return torch.cat(all_gather(x.contiguous()))


def world() -> tuple[int, int]:
    """``(rank, world_size)`` of this process: ``(0, 1)`` unless ``torch.distributed`` is initialised."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def gathered(*tensors: Tensor) -> tuple[Tensor, ...]:
    """:func:`gather_with_grad` of each tensor; integer tensors (labels) are gathered without
    autograd. What a method's loss calls on its embeddings so that its negatives are the global
    batch; in one process it returns the tensors themselves."""
    size = world()[1]
    if size == 1:
        return tensors
    import torch.distributed as dist

    out = []
    for x in tensors:
        if x.is_floating_point():
            out.append(gather_with_grad(x))
        else:
            parts = [torch.empty_like(x) for _ in range(size)]
            dist.all_gather(parts, x.contiguous())
            out.append(torch.cat(parts))
    return tuple(out)


def gathered_objects(items: list) -> list:
    """Every process's ``items`` (e.g. a batch's sentences) concatenated in rank order; the
    list itself in one process."""
    size = world()[1]
    if size == 1:
        return items
    import torch.distributed as dist

    parts: list = [None] * size
    dist.all_gather_object(parts, items)
    return [item for part in parts for item in part]


def shard(batch, rank: int, world_size: int):
    """This process's rows of a global ``batch``: the ``rank``-th of ``world_size`` equal, contiguous
    slices (so that gathering in rank order gives the global batch back). Tensors, lists, and
    tuples or dicts of them are sliced alike."""
    if world_size == 1:
        return batch
    if isinstance(batch, tuple):
        return tuple(shard(b, rank, world_size) for b in batch)
    if isinstance(batch, Mapping):
        return {k: shard(v, rank, world_size) for k, v in batch.items()}
    n = len(batch)
    if n % world_size:
        raise ValueError(f"a global batch of {n} rows does not split evenly over {world_size} processes")
    size = n // world_size
    return batch[rank * size : (rank + 1) * size]


def average_gradients(params: Sequence[Tensor]) -> None:
    """Average the gradients of ``params`` over processes, as DDP does (one all-reduce per dtype).

    A parameter without a gradient in this process counts as a zero gradient, so every process
    takes part in the same all-reduce."""
    import torch.distributed as dist

    rank, size = world()
    if size == 1:
        return
    for p in params:
        if p.requires_grad and p.grad is None:
            p.grad = torch.zeros_like(p)
    by_dtype: dict[torch.dtype, list[Tensor]] = {}
    for p in params:
        if p.grad is not None:
            by_dtype.setdefault(p.grad.dtype, []).append(p.grad)
    for grads in by_dtype.values():
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat /= size
        start = 0
        for g in grads:
            g.copy_(flat[start : start + g.numel()].view_as(g))
            start += g.numel()


def _size(batch: Batch) -> int:
    return len(batch) if isinstance(batch, Tensor) else len(next(iter(batch.values())))


def _chunks(batch: Batch, chunk_size: int) -> list[Batch]:
    n = _size(batch)
    if isinstance(batch, Tensor):
        return list(batch.split(chunk_size))
    return [{k: v[i : i + chunk_size] for k, v in batch.items()} for i in range(0, n, chunk_size)]


def _rng_state() -> tuple[Tensor, list[Tensor]]:
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []
    return torch.get_rng_state(), cuda


def _set_rng_state(state: tuple[Tensor, list[Tensor]]) -> None:
    torch.set_rng_state(state[0])
    if state[1]:
        torch.cuda.set_rng_state_all(state[1])


def cached_backward(
    encode: Callable[[Batch], Tensor],
    batches: Sequence[Batch],
    loss_fn: Callable[..., Tensor],
    chunk_size: int,
) -> Tensor:
    """Backpropagate ``loss_fn(encode(batches[0]), encode(batches[1]), ...)`` chunk by chunk.

    The parameter gradients equal those of the plain computation (for networks without batch
    norm); activation memory is that of ``chunk_size`` examples. Gradients accumulate into
    ``.grad`` as ``loss.backward()`` would; call ``optimizer.step()`` afterwards.

    Args:
        encode: maps a batch (a tensor, or a dict of tensors such as a tokenizer's output) to
            ``(B, D)`` embeddings, e.g. ``lambda b: model(**b).last_hidden_state[:, 0]``.
        batches: the inputs whose embeddings the loss takes, e.g. the two views ``(x1, x2)``.
        loss_fn: the loss on the full batches of embeddings, e.g. :func:`losses.nt_xent`.
        chunk_size: examples per forward pass.

    Returns:
        The loss, detached.
    """
    chunk_size = checks.count(chunk_size, "chunk_size")
    if len(batches) == 0:
        raise ValueError("batches must hold at least one batch of inputs")
    chunked = [_chunks(batch, chunk_size) for batch in batches]
    states: list[list[tuple[Tensor, list[Tensor]]]] = []
    embeddings = []
    with torch.no_grad():  # 1. embeddings only, no graph
        for chunks in chunked:
            states.append([])
            parts = []
            for chunk in chunks:
                states[-1].append(_rng_state())
                parts.append(encode(chunk))
            embeddings.append(torch.cat(parts).detach().requires_grad_())
    loss = loss_fn(*embeddings)  # 2. full-batch loss and its gradient w.r.t. the embeddings
    loss.backward()
    after = _rng_state()
    for chunks, batch_states, full in zip(chunked, states, embeddings):  # 3. chunk-wise backward
        start = 0
        for chunk, state in zip(chunks, batch_states):
            _set_rng_state(state)
            out = encode(chunk)
            grad = full.grad[start : start + len(out)]
            out.backward(grad.to(out.dtype))
            start += len(out)
    _set_rng_state(after)  # leave the generator where the plain computation would
    return loss.detach()
