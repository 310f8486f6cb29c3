"""Checkers for the coding exercises: pass your function, get a verdict that says what is wrong.

Each ``check_*`` calls your function on small random inputs, compares it with the package's
implementation of the same equation and, when they differ, with the usual mistakes (a missing
normalisation, the anchor left in the denominator, a sum instead of a mean, ...). It returns
``True`` and prints a confirmation when your function is right; otherwise it raises
:class:`ExerciseError` naming the closest mistake, or showing expected and obtained values.

>>> from contrastive_tutorial import exercises, losses
>>> exercises.check_nt_xent(losses.nt_xent)
Correct: your NT-Xent matches the package on 4 random batches.
True
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from . import losses
from .methods.adversarial import normalise_per_example
from .methods.promptbert import end_with_period

__all__ = ["ExerciseError", "check_nt_xent", "check_uniformity", "check_sinkhorn", "check_simcse_loss",
           "check_end_with_period", "check_cached_loss", "check_supcon", "check_target_distribution", "check_fgm",
           "CHECKERS"]


class ExerciseError(AssertionError):
    """Your function does not compute what the exercise asks; the message says how it differs."""


def _as_tensor(value, what: str) -> Tensor:
    if not isinstance(value, Tensor):
        raise ExerciseError(f"{what} must return a torch.Tensor, got {type(value).__name__}")
    return value.detach().to(torch.float64)


def _check(
    what: str,
    fn: Callable[..., Tensor],
    cases: Sequence[tuple],
    reference: Callable[..., Tensor],
    mistakes: dict[str, Callable[..., Tensor]],
) -> bool:
    """Compare ``fn`` with ``reference`` on every case; on a mismatch, name the matching mistake."""
    if not callable(fn):
        raise TypeError(f"pass your {what} function itself (the function, not its result), got {type(fn).__name__}")
    for args in cases:
        expected = reference(*args)
        try:
            out = fn(*[a.clone() if isinstance(a, Tensor) else a for a in args])
        except TypeError as error:
            raise ExerciseError(f"{what} could not be called with {len(args)} arguments ({error}); "
                                "check the signature the exercise asks for") from error
        got = _as_tensor(out, what)
        if got.shape != expected.shape:
            raise ExerciseError(f"{what} returned shape {tuple(got.shape)}; expected {tuple(expected.shape)}"
                                + (" (a scalar: average over the anchors)" if expected.dim() == 0 else ""))
        if torch.allclose(got, expected, rtol=1e-4, atol=1e-6):
            continue
        for hint, mistake in mistakes.items():
            if torch.allclose(got, mistake(*args), rtol=1e-4, atol=1e-6):
                raise ExerciseError(f"{what} is not right yet: {hint}")
        raise ExerciseError(f"{what} differs from the expected value: expected {expected.numpy().round(6)}, "
                            f"got {got.numpy().round(6)}. Compare your code with the equation term by term.")
    print(f"Correct: your {what} matches the package on {len(cases)} random batches.")
    return True


def _random(seed: int, *shape: int) -> Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


# --------------------------------------------------------------------------- NT-Xent
def _nt_xent_variant(z1: Tensor, z2: Tensor, tau: float, normalize=True, mask_self=True, both=True) -> Tensor:
    z = torch.cat([z1, z2])
    if normalize:
        z = F.normalize(z, dim=1)
    n = len(z1)
    logits = z @ z.T / tau
    if mask_self:
        logits = logits.masked_fill(torch.eye(2 * n, dtype=torch.bool), float("-inf"))
    positives = torch.cat([torch.arange(n, 2 * n), torch.arange(n)])
    per_anchor = F.cross_entropy(logits, positives, reduction="none")
    return per_anchor.mean() if both else per_anchor[:n].mean()


def check_nt_xent(fn: Callable[[Tensor, Tensor, float], Tensor]) -> bool:
    """Check ``fn(z1, z2, temperature)``: SimCLR's NT-Xent over the ``2N`` views of a batch
    (cosine similarity, every other view a negative, the mean over all ``2N`` anchors)."""
    cases = [(_random(s, n, 5), _random(s + 10, n, 5), tau) for s, n, tau in ((0, 4, 0.5), (1, 6, 0.1), (2, 3, 1.0), (3, 8, 0.2))]
    mistakes = {
        "the embeddings are not normalised: the similarity must be the cosine (F.normalize each row first).":
            lambda a, b, t: _nt_xent_variant(a, b, t, normalize=False),
        "each view's similarity with itself stays in the denominator: mask the diagonal (set it to -inf).":
            lambda a, b, t: _nt_xent_variant(a, b, t, mask_self=False),
        "only the first views are anchors: NT-Xent averages over all 2N views as anchors.":
            lambda a, b, t: _nt_xent_variant(a, b, t, both=False),
        "the similarities are multiplied by the temperature; divide them by it.":
            lambda a, b, t: _nt_xent_variant(a, b, 1 / t),
        "the loss is summed over the anchors; take the mean.":
            lambda a, b, t: _nt_xent_variant(a, b, t) * 2 * len(a),
    }
    return _check("NT-Xent", fn, cases, losses.nt_xent, mistakes)


# --------------------------------------------------------------------------- supervised contrastive
def _supcon_variant(h: Tensor, y: Tensor, tau: float, normalize=True, anchor_in_denominator=False, inside=False) -> Tensor:
    if normalize:
        h = F.normalize(h, dim=1)
    n = len(h)
    logits = h @ h.T / tau
    self_mask = torch.eye(n, dtype=torch.bool)
    denominator_logits = logits if anchor_in_denominator else logits.masked_fill(self_mask, float("-inf"))
    log_prob = logits - torch.logsumexp(denominator_logits, dim=1, keepdim=True)
    positives = (y[:, None] == y[None, :]) & ~self_mask
    keep = positives.any(1)
    if inside:  # Khosla et al.'s L_in: the mean over positives inside the log
        probs = (log_prob.exp() * positives).sum(1) / positives.sum(1).clamp_min(1)
        return -probs[keep].log().mean()
    return (-(log_prob * positives).sum(1)[keep] / positives.sum(1)[keep]).mean()


def check_supcon(fn: Callable[[Tensor, Tensor, float], Tensor]) -> bool:
    """Check ``fn(h, labels, temperature)``: the supervised contrastive term of SCL fine-tuning
    (one view per example, every other example of the class a positive, mean over anchors with a positive)."""
    cases = [(_random(s, len(y), 6), torch.tensor(y), tau) for s, y, tau in
             ((0, [0, 1, 0, 1, 2, 2], 0.3), (1, [0, 0, 0, 1, 1, 2], 0.1), (2, [1, 0, 1, 0], 0.7))]
    mistakes = {
        "the vectors are not normalised: Gunel et al. use the normalised [CLS] vectors Phi_i.":
            lambda h, y, t: _supcon_variant(h, y, t, normalize=False),
        "the anchor itself is in the denominator: sum over k != i.":
            lambda h, y, t: _supcon_variant(h, y, t, anchor_in_denominator=True),
        "the average over positives is inside the log (Khosla et al.'s L_in); SCL averages the log-probabilities.":
            lambda h, y, t: _supcon_variant(h, y, t, inside=True),
    }
    return _check("supervised contrastive loss", fn, cases, losses.supcon_loss, mistakes)


# --------------------------------------------------------------------------- SCCL's target distribution
def check_target_distribution(fn: Callable[[Tensor], Tensor]) -> bool:
    """Check ``fn(q)``: SCCL's (DEC's) target ``p_ik = (q_ik^2 / f_k) / sum_k' (q_ik'^2 / f_k')`` with ``f_k = sum_i q_ik``."""
    cases = [(torch.softmax(_random(s, n, k) * 2, dim=1),) for s, n, k in ((0, 6, 3), (1, 10, 4), (2, 5, 2))]
    mistakes = {
        "the cluster frequencies f_k = sum_i q_ik are missing: divide q^2 by them before normalising.":
            lambda q: (q**2) / (q**2).sum(1, keepdim=True),
        "the rows are not normalised: divide each row of q^2 / f by its sum.":
            lambda q: q**2 / q.sum(0),
        "q is not squared: the target sharpens the assignments with q^2.":
            lambda q: (q / q.sum(0)) / (q / q.sum(0)).sum(1, keepdim=True),
    }
    return _check("target distribution", fn, cases, losses.target_distribution, mistakes)


# --------------------------------------------------------------------------- adversarial perturbation
def check_fgm(fn: Callable[[Tensor, float], Tensor]) -> bool:
    """Check ``fn(grad, epsilon)``: FGM's perturbation ``epsilon * g / ||g||_2``, one norm per
    example over all its tokens and dimensions (``grad`` has shape ``(B, T, D)``)."""
    cases = [(_random(s, b, t, 4), eps) for s, b, t, eps in ((0, 3, 5, 0.5), (1, 2, 7, 1.0), (2, 4, 3, 0.1))]
    mistakes = {
        "one norm for the whole batch: normalise each example separately (norm over its tokens and dimensions).":
            lambda g, e: e * g / g.norm(),
        "one norm per token: the budget epsilon is per example, over all its tokens together.":
            lambda g, e: e * g / g.norm(dim=-1, keepdim=True),
        "this is FGSM (the sign of the gradient, an L-infinity step); FGM divides by the L2 norm.":
            lambda g, e: e * g.sign(),
    }
    return _check("FGM perturbation", fn, cases, lambda g, e: e * normalise_per_example(g), mistakes)


# --------------------------------------------------------------------------- uniformity (SimCLR intuition)
def _uniformity_variant(x: Tensor, t: float, with_self=False, log=True, squared=True) -> Tensor:
    d = torch.cdist(x, x)
    d = d.pow(2) if squared else d
    n = len(x)
    values = (-t * d).flatten() if with_self else (-t * d)[~torch.eye(n, dtype=torch.bool)]
    return torch.logsumexp(values, 0) - torch.log(torch.tensor(float(values.numel()), dtype=x.dtype)) if log \
        else values.exp().mean()


def check_uniformity(fn: Callable[[Tensor, float], Tensor]) -> bool:
    """Check ``fn(x, t)``: Wang & Isola's uniformity ``log mean_{i != j} exp(-t ||x_i - x_j||^2)`` of
    L2-normalised rows ``x`` (chapter "SimCLR intuition")."""
    cases = [(F.normalize(_random(s, n, 4), dim=1), t) for s, n, t in ((0, 6, 2.0), (1, 9, 1.0), (2, 5, 3.0))]
    mistakes = {
        "each point is paired with itself too: average over pairs of *different* points (i != j).":
            lambda x, t: _uniformity_variant(x, t, with_self=True),
        "the log is missing: uniformity is the log of the mean Gaussian potential.":
            lambda x, t: _uniformity_variant(x, t, log=False),
        "the distances are not squared: the potential is exp(-t ||x_i - x_j||^2).":
            lambda x, t: _uniformity_variant(x, t, squared=False),
        "t is missing (or fixed at 2): the potential is exp(-t d^2) with the t passed in.":
            lambda x, t: _uniformity_variant(x, 2.0) if t != 2.0 else _uniformity_variant(x, 1.0),
    }
    return _check("uniformity", fn, cases, losses.uniformity, mistakes)


# --------------------------------------------------------------------------- Sinkhorn-Knopp (Beyond negatives)
def _sinkhorn_variant(scores: Tensor, eps: float, iterations: int, rows_first=False, times_batch=True,
                      divide=True) -> Tensor:
    q = torch.exp((scores / eps if divide else scores) - (scores / eps if divide else scores).max())
    q = q / q.sum()
    n, k = q.shape
    for _ in range(iterations):
        if rows_first:
            q = q / q.sum(1, keepdim=True) / n
            q = q / q.sum(0, keepdim=True) / k
        else:
            q = q / q.sum(0, keepdim=True) / k
            q = q / q.sum(1, keepdim=True) / n
    return q * n if times_batch else q


def check_sinkhorn(fn: Callable[[Tensor, float, int], Tensor]) -> bool:
    """Check ``fn(scores, epsilon, iterations)``: SwAV's codes by Sinkhorn-Knopp on ``exp(scores / epsilon)``,
    each iteration giving every prototype 1/K of the mass and then every sample 1/B, rows returned
    summing to 1 (chapter "Beyond negatives")."""
    cases = [(F.normalize(_random(s, b, 4), dim=1) @ F.normalize(_random(s + 5, k, 4), dim=1).T, eps, it)
             for s, b, k, eps, it in ((0, 8, 3, 0.5, 3), (1, 6, 4, 0.2, 2), (2, 10, 5, 1.0, 4))]
    mistakes = {
        "the rows (samples) are scaled before the columns (prototypes): each iteration first gives every "
        "prototype 1/K of the mass, then every sample 1/B.": lambda s, e, i: _sinkhorn_variant(s, e, i, rows_first=True),
        "the rows sum to 1/B: multiply the result by the batch size so that each sample's code sums to 1.":
            lambda s, e, i: _sinkhorn_variant(s, e, i, times_batch=False),
        "the scores are not divided by epsilon before the exponential.":
            lambda s, e, i: _sinkhorn_variant(s, e, i, divide=False),
    }
    return _check("Sinkhorn-Knopp", fn, cases, losses.sinkhorn_knopp, mistakes)


# --------------------------------------------------------------------------- SimCSE's loss
def _simcse_variant(h1: Tensor, h2: Tensor, tau: float, normalize=True, both=False) -> Tensor:
    a, b = (F.normalize(h1, dim=1), F.normalize(h2, dim=1)) if normalize else (h1, h2)
    target = torch.arange(len(a))
    one = F.cross_entropy(a @ b.T / tau, target)
    return (one + F.cross_entropy(b @ a.T / tau, target)) / 2 if both else one


def check_simcse_loss(fn: Callable[[Tensor, Tensor, float], Tensor]) -> bool:
    """Check ``fn(h1, h2, temperature)``: unsupervised SimCSE's loss, sentence ``i``'s first dropout view
    picking its second view among the batch's second views (cosine, mean over the batch; chapter "SimCSE")."""
    cases = [(_random(s, n, 6), _random(s + 20, n, 6), tau) for s, n, tau in ((0, 5, 0.05), (1, 8, 0.1), (2, 4, 0.5))]
    mistakes = {
        "the vectors are not normalised: the similarity is the cosine.":
            lambda a, b, t: _simcse_variant(a, b, t, normalize=False),
        "both directions are averaged: SimCSE's loss uses the first views as anchors only.":
            lambda a, b, t: _simcse_variant(a, b, t, both=True),
        "this is NT-Xent over 2N views: SimCSE's negatives are the other sentences' second views only.":
            lambda a, b, t: losses.nt_xent(a, b, t),
        "the similarities are multiplied by the temperature; divide them by it.":
            lambda a, b, t: _simcse_variant(a, b, 1 / t),
    }
    return _check("SimCSE loss", fn, cases, losses.simcse_loss, mistakes)


# --------------------------------------------------------------------------- PromptBERT's evaluation detail
def check_end_with_period(fn: Callable[[str], str]) -> bool:
    """Check ``fn(sentence)``: the official PromptBERT evaluation's rule, a period appended to every
    non-empty sentence that does not already end in ``.``, ``?``, ``"`` or ``'`` (chapter "PromptBERT")."""
    if not callable(fn):
        raise TypeError(f"pass your function itself (the function, not its result), got {type(fn).__name__}")
    cases = ["A man plays a guitar", "A man plays a guitar.", "Is it raining?", 'He said "yes"', "it's John's'",
             "", "Wait!", "Rain ", "3.5"]
    for sentence in cases:
        expected = end_with_period(sentence)
        got = fn(sentence)
        if not isinstance(got, str):
            raise ExerciseError(f"the function must return a string, got {type(got).__name__} for {sentence!r}")
        if got == expected:
            continue
        if sentence == "":
            raise ExerciseError("an empty sentence must stay empty (the official code checks len(s) > 0 first)")
        if sentence[-1] in ".?\"'":
            raise ExerciseError(f"{sentence!r} -> {got!r}: a sentence that already ends in . ? \" or ' is left as it is")
        if sentence[-1] == "!":
            raise ExerciseError(f"{sentence!r} -> {got!r}: only . ? \" and ' count as an ending; '!' gets a period")
        if got == sentence.rstrip() + ".":
            raise ExerciseError(f"{sentence!r} -> {got!r}: do not strip or change the sentence; only append '.'")
        raise ExerciseError(f"{sentence!r}: expected {expected!r}, got {got!r}")
    print(f"Correct: your rule matches the official evaluation on {len(cases)} sentences.")
    return True


# --------------------------------------------------------------------------- gradient caching (appendix)
def _micro_batch_loss(z1: Tensor, z2: Tensor, tau: float, chunk: int) -> Tensor:
    return torch.stack([losses.simcse_loss(z1[i:i + chunk], z2[i:i + chunk], tau)
                        for i in range(0, len(z1), chunk)]).mean()


def check_cached_loss(fn: Callable[[Tensor, Tensor, float, int], Tensor]) -> bool:
    """Check ``fn(z1, z2, temperature, chunk)``: the full-batch SimCSE loss computed from chunks of
    ``chunk`` rows, every chunk's queries against *all* the batch's keys (what gradient caching keeps
    exact), so that the value equals ``losses.simcse_loss(z1, z2, temperature)`` (appendix)."""
    cases = [(_random(s, n, 5), _random(s + 30, n, 5), tau, c) for s, n, tau, c in ((0, 8, 0.1, 4), (1, 9, 0.5, 3), (2, 6, 0.05, 2))]
    mistakes = {
        "each chunk only sees its own keys: that is gradient accumulation, which changes the objective "
        "(fewer negatives); score every chunk's queries against all the keys.":
            lambda a, b, t, c: _micro_batch_loss(a, b, t, c),
    }
    return _check("cached loss", fn, cases, lambda a, b, t, c: losses.simcse_loss(a, b, t), mistakes)


CHECKERS = {  # the coding exercise of each chapter that the package checks
    "infonce": "check_nt_xent", "simclr": "check_uniformity", "beyond": "check_sinkhorn", "simcse": "check_simcse_loss",
    "promptbert": "check_end_with_period", "scl": "check_supcon", "adversarial": "check_fgm",
    "sccl": "check_target_distribution", "scaling": "check_cached_loss",
}
