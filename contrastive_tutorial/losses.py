r"""Contrastive losses: one InfoNCE core, and each method's loss as a thin layer on it.

The book's thesis in code. :func:`info_nce` is a softmax cross-entropy over similarities
between a query and a set of keys. SimCLR's :func:`nt_xent`, :func:`simcse_loss` and
:func:`supcon_loss` call it and differ only in which keys they compare, what counts as a
positive, what is left out of the denominator, and the temperature.
:func:`alignment` and :func:`uniformity` (Wang & Isola, 2020) measure the two forces
InfoNCE balances.

Where each is taught: ``info_nce``, ``push_shares``, ``debiased_nt_xent``, ``alignment``, ``uniformity``: chapter
"InfoNCE and temperature"; ``nt_xent``: "SimCLR intuition"; ``simcse_loss``: "SimCSE";
``supcon_loss``: "SCL fine-tuning"; ``student_t_assignment``, ``target_distribution``,
``cluster_kl_loss``: "SCCL" (the clustering half of SCCL, not a contrastive loss, kept here
so every loss of the book lives in one module); ``moco_loss`` (negatives from a queue),
``swav_loss`` with ``sinkhorn_knopp`` (clustering), ``byol_loss`` (asymmetry) and
``barlow_twins_loss``, ``vicreg_loss`` (redundancy reduction): "Beyond negatives".

Conventions: embeddings are ``(B, D)`` tensors; similarities are computed in float32
(float64 when the inputs are float64) so that half-precision inputs at small temperatures
stay finite; every loss checks its inputs and raises ``ValueError``/``TypeError`` naming
the offending argument rather than returning NaN.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import math

import torch
import torch.nn.functional as F
from torch import Tensor

from .checks import count

__all__ = [
    "similarity",
    "info_nce",
    "push_shares",
    "nt_xent",
    "debiased_nt_xent",
    "simcse_loss",
    "contrastive_tension_loss",
    "supcon_loss",
    "alignment",
    "uniformity",
    "student_t_assignment",
    "target_distribution",
    "cluster_kl_loss",
    "byol_loss",
    "moco_loss",
    "sinkhorn_knopp",
    "swav_loss",
    "barlow_twins_loss",
    "vicreg_loss",
]

_REDUCTIONS = ("mean", "sum", "none")


# --------------------------------------------------------------------------- checks
def _check_temperature(temperature: float, name: str = "temperature") -> float:
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)):
        raise TypeError(f"{name} must be a real number, got {type(temperature).__name__}")
    if not math.isfinite(temperature) or temperature <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {temperature}")
    return float(temperature)


def _check_nonnegative(value: float, name: str) -> float:
    """A weight or smoothing constant: a finite real number >= 0 (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def _check_matrix(x: Tensor, name: str, min_rows: int = 1) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    if x.dim() != 2 or x.shape[1] == 0:
        raise ValueError(f"{name} must have shape (B, D) with D >= 1, got shape {tuple(x.shape)}")
    if x.shape[0] < min_rows:
        raise ValueError(f"{name} must hold at least {min_rows} rows, got {x.shape[0]}")


def _check_pair(z1: Tensor, z2: Tensor, names: tuple[str, str] = ("z1", "z2")) -> None:
    _check_matrix(z1, names[0], min_rows=2)
    _check_matrix(z2, names[1], min_rows=2)
    if z1.shape != z2.shape:
        raise ValueError(
            f"{names[0]} and {names[1]} must have the same shape (B, D), "
            f"got {tuple(z1.shape)} and {tuple(z2.shape)}"
        )


def _check_unit_rows(x: Tensor, name: str) -> None:
    """Alignment and uniformity are defined on the unit sphere; other inputs give meaningless numbers."""
    norms = torch.linalg.vector_norm(x.detach().float(), dim=1)
    if ((norms - 1).abs() > 1e-2).any():
        raise ValueError(
            f"{name} must be L2-normalised rows (norms between {norms.min():.3g} and {norms.max():.3g}); "
            "apply torch.nn.functional.normalize(x, dim=1) first"
        )


def _checking_values() -> bool:
    """Whether to run checks that read tensor values back to the host.

    Such a read is impossible while a CUDA graph is being captured and splits a graph that
    ``torch.compile`` traces, so those checks are skipped there (the fast path of
    :mod:`contrastive_tutorial.fast` runs the same inputs eagerly first, where they run).
    Shape, dtype and temperature checks need no read and always run.
    """
    is_compiling = getattr(getattr(torch, "compiler", None), "is_compiling", lambda: False)
    if is_compiling():
        return False
    return not (torch.cuda.is_available() and torch.cuda.is_current_stream_capturing())


def _reduce(per_anchor: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return per_anchor.mean()
    if reduction == "sum":
        return per_anchor.sum()
    return per_anchor


_INPUT_EPS: contextvars.ContextVar[float | None] = contextvars.ContextVar("input_eps", default=None)
"""The coarsest machine epsilon among the floating-point arguments a loss was called with, before
:func:`_in_float32` cast them: what value checks allow for rounding."""


def _in_float32(loss):
    """Run ``loss`` in float32 whatever the caller's precision: autocast is switched off inside it
    and half-precision tensor arguments (fp16, bf16) are cast to float32 (float64 stays float64).

    Under ``torch.autocast`` a matrix product would otherwise come back in bf16/fp16, and the
    logits at :math:`\tau = 0.05` would carry that rounding (bf16 keeps 8 bits of mantissa).
    Gradients flow back through the cast to the half-precision inputs. Tensor arguments that
    hold NaN or inf are refused with an error naming them (where values may be read: not while
    a CUDA graph is captured or ``torch.compile`` traces).
    """

    signature = inspect.signature(loss)

    def cast(value):
        if isinstance(value, Tensor) and value.dtype in (torch.float16, torch.bfloat16):
            return value.float()
        return value

    @functools.wraps(loss)
    def wrapper(*args, **kwargs):
        def run():
            with torch.autocast("cpu", enabled=False), torch.autocast("cuda", enabled=False):
                return loss(*(cast(a) for a in args), **{k: cast(v) for k, v in kwargs.items()})

        if not _checking_values():  # traced or captured: no value checks, so no precision to remember
            return run()
        eps = [_INPUT_EPS.get()] if _INPUT_EPS.get() else []  # a loss inside another keeps the caller's coarsest
        for name, value in signature.bind(*args, **kwargs).arguments.items():
            if isinstance(value, Tensor) and value.is_floating_point():
                if not torch.isfinite(value).all():  # NaN or inf in, NaN out: name the argument instead
                    raise ValueError(f"{loss.__name__}: {name} holds NaN or inf values")
                eps.append(torch.finfo(value.dtype).eps)
        token = _INPUT_EPS.set(max(eps, default=None))
        try:
            return run()
        finally:
            _INPUT_EPS.reset(token)

    return wrapper


# --------------------------------------------------------------------------- core
@_in_float32
def similarity(query: Tensor, keys: Tensor, normalize: bool = True) -> Tensor:
    r"""Similarity matrix :math:`S_{ij} = s(q_i, k_j)`, shape ``(B, K)``.

    Cosine similarity :math:`q_i^\top k_j / (\lVert q_i\rVert \lVert k_j\rVert)` when
    ``normalize`` is true, the plain dot product otherwise. Computed in float32 (float64
    for float64 inputs), whatever the input precision.
    """
    for name, x in (("query", query), ("keys", keys)):
        if not isinstance(x, Tensor) or not x.is_floating_point():
            raise TypeError(f"{name} must be a floating-point torch tensor, got {getattr(x, 'dtype', type(x).__name__)}")
        if x.dim() != 2 or x.shape[1] == 0:
            raise ValueError(f"{name} must have shape (B, D) with D >= 1, got {tuple(x.shape)}")
    if query.shape[1] != keys.shape[1]:
        raise ValueError(f"query and keys must have the same D, got {query.shape[1]} and {keys.shape[1]}")
    dtype = torch.float64 if query.dtype == torch.float64 else torch.float32
    q, k = query.to(dtype), keys.to(dtype)
    if normalize:  # divide by each row's largest entry first, so that the norm of large rows cannot overflow
        q = F.normalize(q / q.detach().abs().amax(1, keepdim=True).clamp_min(torch.finfo(dtype).tiny), dim=-1)
        k = F.normalize(k / k.detach().abs().amax(1, keepdim=True).clamp_min(torch.finfo(dtype).tiny), dim=-1)
    return q @ k.T


def _check_query_keys(query: Tensor, keys: Tensor, key_mask: Tensor | None) -> tuple[int, int]:
    """The checks :func:`info_nce` and :func:`push_shares` share; returns ``(B, K)``."""
    _check_matrix(query, "query")
    _check_matrix(keys, "keys", min_rows=2)
    if query.shape[1] != keys.shape[1]:
        raise ValueError(
            f"query and keys must have the same feature size D, got {query.shape[1]} and {keys.shape[1]}"
        )
    B, K = query.shape[0], keys.shape[0]
    if key_mask is not None and (not isinstance(key_mask, Tensor) or key_mask.dtype != torch.bool
                                 or key_mask.shape != (B, K)):
        raise ValueError(f"key_mask must be a boolean tensor of shape ({B}, {K})")
    return B, K


@_in_float32
def info_nce(
    query: Tensor,
    keys: Tensor,
    positive_idx: Tensor,
    temperature: float,
    *,
    key_mask: Tensor | None = None,
    normalize: bool = True,
    reduction: str = "mean",
) -> Tensor:
    r"""InfoNCE: a softmax classifier that must pick each query's positive among the keys.

    For query :math:`q_i`, keys :math:`k_1 \dots k_K` and positive :math:`p_i`,

    .. math::
        \ell_i = -\log \frac{\exp(s(q_i, k_{p_i}) / \tau)}
                            {\sum_{j \notin M_i} \exp(s(q_i, k_j) / \tau)}

    where :math:`s` is cosine similarity (``normalize=True``) or the dot product, and
    :math:`M_i` the keys excluded for query :math:`i` by ``key_mask`` (e.g. the query
    itself when queries and keys are the same views). With several positives per query
    (``positive_idx`` a boolean mask :math:`P(i)`), the loss averages over them, as in
    Khosla et al.'s :math:`\mathcal{L}^{sup}_{out}`:
    :math:`\ell_i = -\frac{1}{|P(i)|}\sum_{p \in P(i)} \log \frac{\exp(s_{ip}/\tau)}{\sum_{j \notin M_i} \exp(s_{ij}/\tau)}`.

    Oord et al. (2018), "Representation Learning with Contrastive Predictive Coding".
    Taught in the chapter "InfoNCE and temperature".

    Args:
        query: ``(B, D)`` anchors.
        keys: ``(K, D)`` candidates, ``K >= 2`` (one positive and at least one negative).
        positive_idx: ``(B,)`` integer index of each query's positive in ``keys``, or a
            ``(B, K)`` boolean mask of positives (every row needs at least one).
        temperature: :math:`\tau > 0`.
        key_mask: optional ``(B, K)`` boolean, ``True`` where a key is left out of query
            ``i``'s denominator. A positive may not be masked.
        normalize: cosine similarity if true, dot product otherwise.
        reduction: ``"mean"`` over queries, ``"sum"``, or ``"none"`` for the ``(B,)`` losses.

    Returns:
        The loss, a scalar (or ``(B,)`` with ``reduction="none"``), float32 or float64.

    Example:
        >>> q, k = torch.randn(4, 8), torch.randn(6, 8)
        >>> info_nce(q, k, torch.tensor([0, 1, 2, 3]), temperature=0.1).shape
        torch.Size([])
    """
    tau = _check_temperature(temperature)
    B, K = _check_query_keys(query, keys, key_mask)
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    pos_mask = _positive_mask(positive_idx, B, K, query.device)
    logits = similarity(query, keys, normalize) / tau
    if key_mask is not None:
        if _checking_values() and (key_mask & pos_mask).any():
            raise ValueError("key_mask excludes a positive key; a positive must stay in the denominator")
        logits = logits.masked_fill(key_mask, float("-inf"))
    log_prob = torch.log_softmax(logits, dim=1)
    per_anchor = -torch.where(pos_mask, log_prob, 0.0).sum(1) / pos_mask.sum(1)
    return _reduce(per_anchor, reduction)


def _positive_mask(positive_idx: Tensor, B: int, K: int, device: torch.device) -> Tensor:
    """Turn ``positive_idx`` (indices or a boolean mask) into a checked ``(B, K)`` mask."""
    if not isinstance(positive_idx, Tensor):
        raise TypeError(f"positive_idx must be a torch.Tensor, got {type(positive_idx).__name__}")
    if positive_idx.dtype == torch.bool:
        if positive_idx.shape != (B, K):
            raise ValueError(
                f"positive_idx as a mask must have shape ({B}, {K}), got {tuple(positive_idx.shape)}"
            )
        if _checking_values() and not positive_idx.any(1).all():
            raise ValueError("positive_idx mask has a query without any positive")
        return positive_idx.to(device)
    if positive_idx.is_floating_point() or positive_idx.is_complex():
        raise TypeError(f"positive_idx must hold integers or booleans, got dtype {positive_idx.dtype}")
    if positive_idx.shape != (B,):
        raise ValueError(f"positive_idx must have shape ({B},), got {tuple(positive_idx.shape)}")
    if _checking_values() and ((positive_idx < 0) | (positive_idx >= K)).any():
        raise ValueError(f"positive_idx must lie in [0, {K}), got values outside that range")
    return F.one_hot(positive_idx.to(device), K).bool()


@_in_float32
def push_shares(
    query: Tensor,
    keys: Tensor,
    positive_idx: Tensor,
    temperature: float,
    *,
    key_mask: Tensor | None = None,
    normalize: bool = True,
) -> Tensor:
    r"""Each negative's share of the push that :func:`info_nce` gives query :math:`i`, shape ``(B, K)``.

    The gradient of InfoNCE with respect to a negative's similarity is
    :math:`\partial \ell_i / \partial s_{ij} = p_{ij} / \tau` with :math:`p_{ij}` the softmax weight
    of key :math:`j`, so the negatives share the push in proportion to :math:`p_{ij}`:

    .. math::
        w_{ij} = \frac{\exp(s_{ij}/\tau)}{\sum_{k \notin P(i) \cup M_i} \exp(s_{ik}/\tau)}
        \quad (j \notin P(i) \cup M_i), \qquad w_{ij} = 0 \text{ otherwise},

    each row summing to 1 over the negatives. Which of them are *false* negatives (of the query's
    own class) only labels can tell: chapter "InfoNCE and temperature" sums :math:`w_{ij}` over
    them. Arguments as for :func:`info_nce`; a query needs at least one negative.
    """
    tau = _check_temperature(temperature)
    B, K = _check_query_keys(query, keys, key_mask)
    left_out = _positive_mask(positive_idx, B, K, query.device)
    if key_mask is not None:
        left_out = left_out | key_mask.to(query.device)
    if _checking_values() and left_out.all(1).any():
        raise ValueError("a query has no negative: every key is a positive or masked")
    logits = (similarity(query, keys, normalize) / tau).masked_fill(left_out, float("-inf"))
    return torch.softmax(logits, dim=1)


# --------------------------------------------------------------------------- methods
@_in_float32
def nt_xent(z1: Tensor, z2: Tensor, temperature: float = 0.5) -> Tensor:
    r"""SimCLR's NT-Xent: InfoNCE over the 2N views of a batch.

    Stack the views, :math:`z = [z^{(1)}; z^{(2)}]` with :math:`2N` rows; the positive of
    row :math:`i` is :math:`i+N` (and of :math:`i+N`, :math:`i`); every other row of the
    batch is a negative and self-similarity is left out:

    .. math::
        \mathcal{L} = \frac{1}{2N} \sum_{i=1}^{2N} -\log
        \frac{\exp(\cos(z_i, z_{p(i)})/\tau)}{\sum_{k \ne i} \exp(\cos(z_i, z_k)/\tau)}

    Chen et al. (2020), "A Simple Framework for Contrastive Learning of Visual
    Representations". Taught in the chapter "SimCLR intuition".

    Args:
        z1, z2: ``(N, D)`` projections of the two views, ``N >= 2``.
        temperature: :math:`\tau > 0` (SimCLR uses 0.5 at small batch, 0.1 at large).
    """
    _check_pair(z1, z2)
    n = z1.shape[0]
    z = torch.cat([z1, z2])
    idx = torch.arange(n, device=z.device)
    positive = torch.cat([idx + n, idx])
    self_pair = torch.eye(2 * n, dtype=torch.bool, device=z.device)
    return info_nce(z, z, positive, temperature, key_mask=self_pair)


@_in_float32
def debiased_nt_xent(z1: Tensor, z2: Tensor, temperature: float = 0.5, tau_plus: float = 0.1,
                     beta: float = 0.0) -> Tensor:
    r"""NT-Xent with its negatives corrected for false negatives and, for :math:`\beta > 0`, tilted to hard ones.

    For view :math:`i` of the :math:`2N` with positive logit :math:`s_+ = \cos(z_i, z_{p(i)})/\tau`
    and the :math:`M = 2N-2` other views' logits :math:`s_j`, NT-Xent is
    :math:`-\log e^{s_+}/(e^{s_+} + \sum_j e^{s_j})`. Some of those :math:`M` views are of the
    anchor's own class; if a share :math:`\tau^+` of all data is (the class prior), Chuang et
    al. (2020) estimate the true negatives' mass by subtracting the positive's expected share,
    and Robinson et al. (2021) weight every negative by its hardness
    :math:`w_j = e^{\beta s_j} / \tfrac{1}{M}\sum_k e^{\beta s_k}` first:

    .. math::
        N_g = \max\Big(\frac{\sum_j w_j e^{s_j} - \tau^+ M e^{s_+}}{1 - \tau^+},\; M e^{-1/\tau}\Big),
        \qquad
        \ell_i = -\log \frac{e^{s_+}}{e^{s_+} + N_g}

    averaged over the :math:`2N` views; the floor is the smallest value the mass can take
    (every cosine :math:`-1`). :math:`\tau^+ = 0, \beta = 0` is :func:`nt_xent` exactly;
    :math:`\beta = 0` is the debiased loss, :math:`\beta > 0` the hard-negative one. As in both
    papers' official code the weights are not detached. Computed in the log domain, so small
    temperatures stay finite. Taught in the chapter "InfoNCE and temperature".

    Args:
        z1, z2: ``(N, D)`` projections of the two views, ``N >= 2``.
        temperature: :math:`\tau > 0` (both papers use 0.5).
        tau_plus: the class prior :math:`\tau^+`, in ``[0, 1)`` (0.1 for ten balanced classes).
        beta: hardness :math:`\beta \ge 0` (Robinson et al. use 0.5 to 1).
    """
    _check_pair(z1, z2)
    tau = _check_temperature(temperature)
    for name, value, high in (("tau_plus", tau_plus, 1.0), ("beta", beta, math.inf)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
        if not (0 <= value < high):
            raise ValueError(f"{name} must lie in [0, {high:g}), got {value}")
    n = z1.shape[0]
    z = torch.cat([z1, z2])
    logits = similarity(z, z) / tau
    idx = torch.arange(2 * n, device=z.device)
    partner = (idx + n) % (2 * n)
    positive = logits[idx, partner]
    left_out = torch.eye(2 * n, dtype=torch.bool, device=z.device)
    left_out[idx, partner] = True
    negatives = logits.masked_fill(left_out, float("-inf"))
    m = 2 * n - 2
    log_mass = torch.logsumexp(negatives, 1)  # log sum_j w_j e^{s_j}, with w_j = 1 when beta = 0
    if beta > 0:
        log_mass = torch.logsumexp((1 + beta) * negatives, 1) - torch.logsumexp(beta * negatives, 1) + math.log(m)
    removed = tau_plus * m * torch.exp(positive - log_mass)  # the share of the mass taken as false negatives
    valid = removed < 1
    log_ng = log_mass + torch.log1p(-torch.where(valid, removed, 0.0)) - math.log1p(-tau_plus)
    log_floor = torch.full_like(log_ng, math.log(m) - 1 / tau)
    log_ng = torch.where(valid, torch.maximum(log_ng, log_floor), log_floor)
    return (torch.logaddexp(positive, log_ng) - positive).mean()


@_in_float32
def simcse_loss(
    z1: Tensor,
    z2: Tensor,
    temperature: float = 0.05,
    hard_negatives: Tensor | None = None,
    *,
    exclude: Tensor | None = None,
) -> Tensor:
    r"""SimCSE's loss: sentence :math:`i`'s first view must pick its own second view.

    .. math::
        \ell_i = -\log \frac{e^{\cos(z_{1,i}, z_{2,i})/\tau}}
        {\sum_{j=1}^{N} e^{\cos(z_{1,i}, z_{2,j})/\tau} + \sum_{j=1}^{N} e^{\cos(z_{1,i}, h_j)/\tau}}

    The second sum is present only with ``hard_negatives`` (supervised SimCSE: ``h_j`` is the
    contradiction of premise ``j``, a negative for every anchor). As in the official code,
    the loss is one-directional (anchors are ``z1``) and averaged over the batch.

    Gao, Yao & Chen (2021), "SimCSE: Simple Contrastive Learning of Sentence Embeddings".
    Taught in the chapter "SimCSE".

    Args:
        z1, z2: ``(N, D)`` the two views (two dropout passes, or premise and entailment).
        temperature: :math:`\tau > 0`, 0.05 in the paper.
        hard_negatives: optional ``(N, D)`` hard negatives.
        exclude: optional ``(N, N)`` boolean, ``True`` where ``z2[j]`` must not count as a
            negative of anchor ``i`` (e.g. ``j`` is the same sentence as ``i``: a false
            negative); the diagonal (the positives) must be ``False``.
    """
    _check_pair(z1, z2)
    n = z1.shape[0]
    keys = z2
    if hard_negatives is not None:
        _check_pair(z1, hard_negatives, ("z1", "hard_negatives"))
        keys = torch.cat([z2, hard_negatives])
    key_mask = None
    if exclude is not None:
        if not isinstance(exclude, Tensor) or exclude.dtype != torch.bool or exclude.shape != (n, n):
            raise ValueError(f"exclude must be a boolean tensor of shape ({n}, {n})")
        key_mask = exclude.to(z1.device)
        if hard_negatives is not None:
            key_mask = torch.cat([key_mask, torch.zeros_like(key_mask)], dim=1)
    positive = torch.arange(n, device=z1.device)
    return info_nce(z1, keys, positive, temperature, key_mask=key_mask)


@_in_float32
def contrastive_tension_loss(z1: Tensor, z2: Tensor, labels: Tensor) -> Tensor:
    r"""Contrastive tension: binary cross-entropy on the dot products of two encoders' vectors.

    For pair :math:`k` with vectors :math:`a_k` (encoder 1) and :math:`b_k` (encoder 2) and
    label :math:`y_k` (1: the same sentence, 0: two different sentences),

    .. math::
        \mathcal{L} = -\frac{1}{K} \sum_{k} \big[y_k \log \sigma(a_k^\top b_k)
        + (1 - y_k) \log(1 - \sigma(a_k^\top b_k))\big]

    No normalisation and no temperature: the dot product itself is the logit.
    Carlsson et al. (2021), "Semantic Re-tuning with Contrastive Tension". Taught in the
    chapter "SimCSE" as a variation.

    Args:
        z1, z2: ``(K, D)`` vectors of the pairs from the two encoders.
        labels: ``(K,)`` of 0/1 (bool, int or float).
    """
    _check_pair(z1, z2)
    if labels.shape != (z1.shape[0],):
        raise ValueError(f"labels must have shape ({z1.shape[0]},) to match z1, got {tuple(labels.shape)}")
    if not ((labels == 0) | (labels == 1)).all():
        raise ValueError("labels must be 0 or 1")
    dtype = torch.float64 if z1.dtype == torch.float64 else torch.float32
    logits = (z1.to(dtype) * z2.to(dtype)).sum(1)
    return F.binary_cross_entropy_with_logits(logits, labels.to(device=logits.device, dtype=dtype))


@_in_float32
def supcon_loss(features: Tensor, labels: Tensor, temperature: float = 0.07) -> Tensor:
    r"""Supervised contrastive loss :math:`\mathcal{L}^{sup}_{out}` (Khosla et al., 2020).

    Every example with the same label is a positive:

    .. math::
        \mathcal{L} = \frac{1}{|A'|}\sum_{i \in A'} \frac{-1}{|P(i)|} \sum_{p \in P(i)}
        \log \frac{\exp(\cos(z_i, z_p)/\tau)}{\sum_{a \ne i} \exp(\cos(z_i, z_a)/\tau)}

    with :math:`P(i)` the other examples (all views) labelled :math:`y_i`, and :math:`A'`
    the anchors that have at least one positive; anchors without one are left out. This is
    the form Gunel et al. (2021) add to cross-entropy for fine-tuning (one view per example).
    Features are L2-normalised here. Khosla et al.'s code also multiplies by
    :math:`\tau/\tau_{base}`, which is 1 at their defaults and omitted.

    Taught in the chapter "SCL fine-tuning".

    Args:
        features: ``(B, D)`` embeddings, or ``(B, V, D)`` with ``V`` views per example.
        labels: ``(B,)`` integer class labels.
        temperature: :math:`\tau > 0`.

    Raises:
        ValueError: if no anchor has a positive (every label occurs once with one view).
    """
    if not isinstance(features, Tensor):
        raise TypeError(f"features must be a torch.Tensor, got {type(features).__name__}")
    if features.dim() == 3:
        views = features.shape[1]
        features = features.transpose(0, 1).reshape(-1, features.shape[2])  # view-major
    elif features.dim() == 2:
        views = 1
    else:
        raise ValueError(f"features must have shape (B, D) or (B, V, D), got {tuple(features.shape)}")
    _check_matrix(features, "features", min_rows=2)
    if not isinstance(labels, Tensor) or labels.is_floating_point() or labels.dtype == torch.bool:
        raise TypeError("labels must be an integer torch.Tensor")
    n = features.shape[0] // views
    if labels.shape != (n,):
        raise ValueError(f"labels must have shape ({n},) to match features, got {tuple(labels.shape)}")
    labels = labels.to(features.device).repeat(views)
    self_pair = torch.eye(len(labels), dtype=torch.bool, device=features.device)
    positives = (labels[:, None] == labels[None, :]) & ~self_pair
    has_positive = positives.any(1)
    if not has_positive.any():
        raise ValueError("supcon_loss needs at least one anchor with a positive: every label occurs once")
    anchors = features[has_positive]
    return info_nce(
        anchors,
        features,
        positives[has_positive],
        temperature,
        key_mask=self_pair[has_positive],
    )


# --------------------------------------------------------------------------- geometry
@_in_float32
def alignment(x: Tensor, y: Tensor, alpha: float = 2) -> Tensor:
    r"""Alignment of positive pairs: :math:`\mathbb{E}\,\lVert x_i - y_i \rVert_2^{\alpha}`.

    Lower is better (positives closer). ``x`` and ``y`` are expected to be L2-normalised,
    as in Wang & Isola (2020), "Understanding Contrastive Representation Learning through
    Alignment and Uniformity on the Hypersphere". Taught in "InfoNCE and temperature".

    Args:
        x, y: ``(N, D)`` embeddings of the two sides of ``N`` positive pairs.
        alpha: exponent :math:`\alpha > 0` (2 in the paper).
    """
    _check_temperature(alpha, "alpha")
    _check_matrix(x, "x")
    _check_matrix(y, "y")
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    _check_unit_rows(x, "x")
    _check_unit_rows(y, "y")
    return torch.linalg.vector_norm(x - y, dim=1).pow(alpha).mean()


@_in_float32
def uniformity(x: Tensor, t: float = 2) -> Tensor:
    r"""Uniformity: :math:`\log \mathbb{E}_{i<j}\, e^{-t \lVert x_i - x_j \rVert_2^2}`.

    Lower is better (features spread over the sphere). It is 0 for collapse (all points
    equal) and tends to :math:`-2t` (-4 at :math:`t=2`) for unit vectors spread uniformly
    over a high-dimensional sphere, where pairwise squared distances concentrate at 2. Computed with log-sum-exp and
    squared distances from the Gram matrix, so identical points have finite gradients.
    Wang & Isola (2020). Taught in "InfoNCE and temperature".

    Args:
        x: ``(N, D)`` L2-normalised embeddings, ``N >= 2``.
        t: :math:`t > 0` (2 in the paper).
    """
    _check_temperature(t, "t")
    _check_matrix(x, "x", min_rows=2)
    _check_unit_rows(x, "x")
    dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    x = x.to(dtype)
    sq_norm = x.pow(2).sum(1)
    sq_dist = (sq_norm[:, None] + sq_norm[None, :] - 2 * x @ x.T).clamp_min(0)
    i, j = torch.triu_indices(len(x), len(x), offset=1, device=x.device)
    pairs = sq_dist[i, j]
    return torch.logsumexp(-t * pairs, dim=0) - math.log(pairs.numel())


# --------------------------------------------------------------------------- clustering (SCCL)
@_in_float32
def student_t_assignment(embeddings: Tensor, centres: Tensor, alpha: float = 1.0) -> Tensor:
    r"""Soft cluster assignments with a Student's t kernel (DEC; SCCL, Zhang et al. 2021, eq. 3).

    .. math::
        q_{jk} = \frac{\left(1 + \lVert e_j - \mu_k \rVert_2^2 / \alpha\right)^{-\frac{\alpha+1}{2}}}
        {\sum_{k'} \left(1 + \lVert e_j - \mu_{k'} \rVert_2^2 / \alpha\right)^{-\frac{\alpha+1}{2}}}

    Args:
        embeddings: ``(M, D)`` embeddings :math:`e_j`.
        centres: ``(K, D)`` cluster centres :math:`\mu_k`.
        alpha: degrees of freedom of the Student's t distribution (1 in SCCL).

    Returns:
        ``(M, K)`` rows that sum to one. Computed as a softmax of the log-kernel, so far-away
        points do not underflow to 0/0.
    """
    _check_temperature(alpha, "alpha")
    _check_matrix(embeddings, "embeddings")
    _check_matrix(centres, "centres")
    if embeddings.shape[1] != centres.shape[1]:
        raise ValueError(
            f"embeddings and centres must have the same dimension D, got {embeddings.shape[1]} and {centres.shape[1]}"
        )
    dtype = torch.float64 if embeddings.dtype == torch.float64 else torch.float32
    e, mu = embeddings.to(torch.float64), centres.to(torch.float64)
    # Distances of far-away points overflow when squared; scale by the largest entry c first:
    # log(1 + d^2 / alpha) = log(c^2) + log(1 / c^2 + (d / c)^2 / alpha).
    c = torch.maximum(e.detach().abs().max(), mu.detach().abs().max()).clamp_min(1.0)
    es, ms = e / c, mu / c  # float64 expansion: no (M, K, D) tensor, and no cancellation worth speaking of
    sq_scaled = (es.pow(2).sum(1)[:, None] + ms.pow(2).sum(1)[None, :] - 2 * es @ ms.T).clamp_min(0)
    log1p_dist = 2 * torch.log(c) + torch.log(1 / c**2 + sq_scaled / alpha)
    log_kernel = -(alpha + 1) / 2 * log1p_dist
    return torch.softmax(log_kernel, dim=1).to(dtype)


def _check_assignment(q: Tensor, name: str = "q") -> None:
    """Rows of probabilities, to the rounding of the precision the caller passed them in: a bf16
    or fp16 distribution's rows sum to 1 only within that format's epsilon."""
    _check_matrix(q, name)
    rows = q.detach().double().sum(1)
    tolerance = max(1e-4, 2 * (_INPUT_EPS.get() or 0.0))
    if (q.detach() < 0).any() or ((rows - 1).abs() > tolerance).any():
        raise ValueError(f"{name} must hold probabilities: non-negative rows that sum to 1 (within {tolerance:.0e})")


@_in_float32
def target_distribution(q: Tensor) -> Tensor:
    r"""The sharpened auxiliary target of SCCL/DEC: square the assignments, divide by cluster frequency.

    .. math::
        p_{jk} = \frac{q_{jk}^2 / f_k}{\sum_{k'} q_{jk'}^2 / f_{k'}}, \qquad f_k = \sum_{j} q_{jk}

    Squaring favours confident assignments; dividing by the soft cluster size :math:`f_k`
    (over the batch, as in the official code) keeps large clusters from absorbing the
    others. The result is detached: it is a target, not a path for gradients.

    Args:
        q: ``(M, K)`` soft assignments (rows sum to one).
    """
    _check_assignment(q)
    q = q.detach()
    weight = q.pow(2) / q.sum(0).clamp_min(torch.finfo(q.dtype).tiny)
    return weight / weight.sum(1, keepdim=True)


@_in_float32
def cluster_kl_loss(q: Tensor, p: Tensor | None = None, eps: float = 1e-8) -> Tensor:
    r"""SCCL's clustering loss: :math:`\mathcal{L}_C = \frac{1}{M} \sum_j \mathrm{KL}(p_j \,\|\, q_j)`.

    .. math::
        \mathcal{L}_C = \frac{1}{M} \sum_{j=1}^{M} \sum_{k=1}^{K} p_{jk} \log \frac{p_{jk}}{q_{jk}}

    Args:
        q: ``(M, K)`` soft assignments from :func:`student_t_assignment`; gradients flow
            through it.
        p: ``(M, K)`` targets; default :func:`target_distribution` of ``q`` (recomputed from
            the batch and detached at every step, as the official SCCL code does).
        eps: added to ``q`` inside the log, as in the official code, so an assignment that
            underflowed to 0 gives a large finite loss rather than inf.
    """
    _check_assignment(q)
    _check_nonnegative(eps, "eps")
    p = target_distribution(q) if p is None else p
    _check_assignment(p, "p")
    if p.shape != q.shape:
        raise ValueError(f"p must have the shape of q {tuple(q.shape)}, got {tuple(p.shape)}")
    p = p.to(q.dtype)
    return torch.special.xlogy(p, p).sum(1).mean() - (p * torch.log(q + eps)).sum(1).mean()


# --------------------------------------------------------------------------- beyond negatives
@_in_float32
def byol_loss(p: Tensor, z: Tensor, stop_gradient: bool = True) -> Tensor:
    r"""BYOL's regression loss: :math:`\frac{1}{N}\sum_i \lVert \bar p_i - \mathrm{sg}(\bar z_i) \rVert^2 = \frac{1}{N}\sum_i 2 - 2\cos(p_i, z_i)`.

    ``p`` is the online network's prediction, ``z`` the target's projection of the other
    view; ``sg`` (stop-gradient) means ``z`` is a constant, so only the online side learns.
    No negatives: collapse is avoided by the asymmetry (predictor on one side, a slowly
    moving target on the other). SimSiam's :math:`D = -\cos(p, \mathrm{sg}(z))` is
    ``byol_loss / 2 - 1`` with the target equal to the online network. Grill et al. (2020);
    Chen & He (2021). Taught in "Beyond negatives".

    Args:
        p: ``(N, D)`` predictions (the gradient flows through them).
        z: ``(N, D)`` targets (detached here).
        stop_gradient: ``False`` lets the gradient flow into ``z`` too: SimSiam's ablation
            without stop-gradient (Chen & He, Figure 2), which collapses.
    """
    _check_pair(p, z, ("p", "z"))
    if not isinstance(stop_gradient, bool):
        raise TypeError(f"stop_gradient must be True or False, got {type(stop_gradient).__name__}")
    cosine = F.cosine_similarity(p, z.detach() if stop_gradient else z, dim=1, eps=1e-8)
    return (2 - 2 * cosine).mean()


@_in_float32
def moco_loss(
    q: Tensor, k: Tensor, queue: Tensor, temperature: float = 0.2, queue_mask: Tensor | None = None
) -> Tensor:
    r"""MoCo's InfoNCE: each query's positive is its own key; the negatives are a queue of old keys.

    .. math::
        \ell_i = -\log \frac{\exp(q_i \cdot k_i / \tau)}{\exp(q_i \cdot k_i / \tau)
        + \sum_{n=1}^{K} \exp(q_i \cdot u_n / \tau)}

    on L2-normalised vectors: an :func:`info_nce` over the keys ``[k; queue]`` with the
    batch's other keys left out of each row (MoCo compares a query with its own key and the
    queue only). Keys come
    from the momentum encoder and carry no gradient (detached here), so the number of
    negatives ``K`` is decoupled from the batch size. He et al. (2020), MoCo v2 uses
    :math:`\tau = 0.2`. Taught in "Beyond negatives".

    Args:
        q: ``(N, D)`` queries from the online encoder.
        k: ``(N, D)`` keys of the other view from the momentum encoder.
        queue: ``(K, D)`` keys of earlier batches, ``K >= 1``.
        queue_mask: optional ``(N, K)`` boolean, ``True`` where a queued key must not count as a
            negative of query ``i`` (an older key of the same image: MoCo's deduplicated queue).
    """
    _check_pair(q, k, ("q", "k"))
    _check_matrix(queue, "queue")
    if queue.shape[1] != q.shape[1]:
        raise ValueError(f"queue must have feature size D={q.shape[1]}, got {queue.shape[1]}")
    n = q.shape[0]
    keys = torch.cat([k.detach(), queue.detach().to(k.dtype)])
    # Only the query's own key and the queue compete: the batch's other keys are left out.
    other_keys = ~torch.eye(n, len(keys), dtype=torch.bool, device=q.device)
    other_keys[:, n:] = False
    if queue_mask is not None:
        if not isinstance(queue_mask, Tensor) or queue_mask.dtype != torch.bool or queue_mask.shape != (n, len(queue)):
            raise ValueError(f"queue_mask must be a boolean tensor of shape ({n}, {len(queue)}), got "
                             f"{getattr(queue_mask, 'dtype', type(queue_mask).__name__)} {tuple(getattr(queue_mask, 'shape', ()))}")
        other_keys[:, n:] = queue_mask.to(q.device)
    return info_nce(q, keys, torch.arange(n, device=q.device), temperature, key_mask=other_keys)


@torch.no_grad()
@_in_float32
def sinkhorn_knopp(scores: Tensor, epsilon: float = 0.05, iterations: int = 3) -> Tensor:
    r"""SwAV's codes: an equipartitioned soft assignment of the batch to the prototypes.

    Solves :math:`\max_{Q} \mathrm{Tr}(Q^\top S) + \epsilon H(Q)` over assignments whose
    prototypes each receive :math:`1/K` of the batch and whose samples each carry
    :math:`1/B`, by Sinkhorn-Knopp: start from :math:`Q = \exp(S / \epsilon)`, then
    alternately rescale its prototype sums to :math:`1/K` and its sample sums to :math:`1/B`.
    The returned rows (one per sample) sum to 1. No gradient: codes are targets.
    Caron et al. (2020), :math:`\epsilon = 0.05`, 3 iterations. The rescaling runs on
    :math:`\log Q` (log-sum-exp), so small :math:`\epsilon` neither overflows nor gives 0/0.

    Args:
        scores: ``(B, K)`` similarities of normalised embeddings to normalised prototypes.
    """
    _check_matrix(scores, "scores")
    _check_temperature(epsilon, "epsilon")
    count(iterations, "iterations")
    dtype = torch.float64 if scores.dtype == torch.float64 else torch.float32
    # In the log domain: exp(S / epsilon) overflows or underflows for small epsilon, its logarithm does not.
    log_q = scores.detach().to(dtype) / epsilon
    n, k = log_q.shape
    for _ in range(iterations):
        log_q = log_q - torch.logsumexp(log_q, dim=0, keepdim=True) - math.log(k)  # each prototype: 1/K
        log_q = log_q - torch.logsumexp(log_q, dim=1, keepdim=True) - math.log(n)  # each sample: 1/B
    return torch.exp(log_q + math.log(n))


@_in_float32
def swav_loss(
    scores1: Tensor, scores2: Tensor, temperature: float = 0.1, epsilon: float = 0.05, iterations: int = 3
) -> Tensor:
    r"""SwAV's swapped prediction: predict one view's code from the other view's scores.

    .. math::
        \mathcal{L} = -\frac{1}{2B} \sum_i \sum_k \Big[ q^{(1)}_{ik} \log p^{(2)}_{ik}
        + q^{(2)}_{ik} \log p^{(1)}_{ik} \Big], \qquad
        p^{(v)}_{ik} = \mathrm{softmax}_k\big(s^{(v)}_{ik} / \tau\big)

    with codes :math:`q^{(v)}` = :func:`sinkhorn_knopp` of the scores :math:`s^{(v)}`. The
    equipartition constraint is what prevents collapse: all samples cannot share one
    prototype. Caron et al. (2020). Taught in "Beyond negatives".

    Args:
        scores1, scores2: ``(B, K)`` prototype scores of the two views.
    """
    _check_pair(scores1, scores2, ("scores1", "scores2"))
    tau = _check_temperature(temperature)
    q1, q2 = sinkhorn_knopp(scores1, epsilon, iterations), sinkhorn_knopp(scores2, epsilon, iterations)
    dtype = q1.dtype
    log_p1 = torch.log_softmax(scores1.to(dtype) / tau, dim=1)
    log_p2 = torch.log_softmax(scores2.to(dtype) / tau, dim=1)
    return -0.5 * ((q1 * log_p2).sum(1).mean() + (q2 * log_p1).sum(1).mean())


@_in_float32
def barlow_twins_loss(z1: Tensor, z2: Tensor, lambd: float = 5e-3, eps: float = 1e-5) -> Tensor:
    r"""Barlow Twins: make the cross-correlation of the two views' features the identity.

    Standardise each feature over the batch, :math:`\hat z = (z - \mu) / \sqrt{\sigma^2 + \epsilon}`
    (batch norm without affine parameters), then with
    :math:`C_{ij} = \frac{1}{N} \sum_b \hat z^{(1)}_{bi} \hat z^{(2)}_{bj}`

    .. math::
        \mathcal{L} = \sum_i (1 - C_{ii})^2 + \lambda \sum_i \sum_{j \ne i} C_{ij}^2

    The diagonal term makes each feature invariant to the augmentation; the off-diagonal
    term decorrelates features (redundancy reduction), so they cannot all collapse to one
    direction (``lambd=0`` keeps the diagonal term only, the ablation that shows it).
    Zbontar et al. (2021), :math:`\lambda = 5 \cdot 10^{-3}`. Taught in
    "Beyond negatives".

    Args:
        z1, z2: ``(N, D)`` projections of the two views, ``N >= 2``.
    """
    _check_pair(z1, z2)
    _check_nonnegative(lambd, "lambd")
    _check_temperature(eps, "eps")  # 0 would divide a constant feature by 0
    dtype = torch.float64 if z1.dtype == torch.float64 else torch.float32
    z1, z2 = z1.to(dtype), z2.to(dtype)

    def standardise(z: Tensor) -> Tensor:
        return (z - z.mean(0)) / torch.sqrt(z.var(0, unbiased=False) + eps)

    c = standardise(z1).T @ standardise(z2) / z1.shape[0]
    diagonal = torch.diagonal(c)
    on_diag = (1 - diagonal).pow(2).sum()
    off_diag = c.pow(2).sum() - diagonal.pow(2).sum()
    return on_diag + lambd * off_diag


@_in_float32
def vicreg_loss(z1: Tensor, z2: Tensor, sim_coeff: float = 25.0, std_coeff: float = 25.0, cov_coeff: float = 1.0,
                eps: float = 1e-4) -> Tensor:
    r"""VICReg: invariance, variance and covariance terms on the two views' projections.

    With :math:`\bar z = z - \mathrm{mean}(z)` over the batch and the covariance
    :math:`C(z) = \bar z^\top \bar z / (N - 1)`,

    .. math::
        \mathcal{L} = \lambda \frac{1}{ND}\lVert z^{(1)} - z^{(2)} \rVert_F^2
        + \mu \frac{1}{2}\big[v(z^{(1)}) + v(z^{(2)})\big] + \nu \big[c(z^{(1)}) + c(z^{(2)})\big],

    :math:`v(z) = \frac{1}{D}\sum_j \max\big(0, 1 - \sqrt{C(z)_{jj} + \epsilon}\big)` (each
    feature keeps a standard deviation of at least 1: no collapse to a point) and
    :math:`c(z) = \frac{1}{D}\sum_{i \ne j} C(z)_{ij}^2` (features decorrelated: no dimensional
    collapse). Unlike Barlow Twins the features are not standardised and the two views are
    regularised separately. Bardes et al. (2022), :math:`\lambda = \mu = 25`, :math:`\nu = 1`;
    the variance term is averaged over the two views as in the official code. Taught in
    "Beyond negatives".

    Args:
        z1, z2: ``(N, D)`` projections of the two views, ``N >= 2``.
    """
    _check_pair(z1, z2)
    for name, value in (("sim_coeff", sim_coeff), ("std_coeff", std_coeff), ("cov_coeff", cov_coeff), ("eps", eps)):
        _check_nonnegative(value, name)
    n, d = z1.shape
    invariance = F.mse_loss(z1, z2)

    def variance_and_covariance(z: Tensor) -> tuple[Tensor, Tensor]:
        centred = z - z.mean(0)
        cov = centred.T @ centred / (n - 1)
        diagonal = torch.diagonal(cov)
        variance = F.relu(1 - torch.sqrt(diagonal + eps)).mean()
        return variance, (cov.pow(2).sum() - diagonal.pow(2).sum()) / d

    (v1, c1), (v2, c2) = variance_and_covariance(z1), variance_and_covariance(z2)
    return sim_coeff * invariance + std_coeff * (v1 + v2) / 2 + cov_coeff * (c1 + c2)
