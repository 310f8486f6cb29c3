"""Text views: the ways the book's methods make two views of a sentence.

- **dropout** (SimCSE, USCAL, SCCL's virtual mode): the same batch twice through the encoder
  in training mode, :func:`doubled`; dropout makes the two vectors differ;
- **word deletion** and **contextual substitution** (SCCL's augmentations):
  :func:`word_deletion`, :func:`contextual_substitution` with a masked language model;
- **spans of one document** (DeCLUTR): :func:`declutr_spans`, :func:`declutr_pairs`;
- **prompt templates** (PromptBERT): :class:`Template`, the same sentence in two templates;
- **adversarial perturbations** of the word embeddings (SCAL, USCAL): :func:`adversarial_delta`.

Image views are in :mod:`contrastive_tutorial.views.image`. Each method in
:mod:`contrastive_tutorial.methods` takes its views from here; the chapters that teach them
are named in each docstring.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from ..train import eval_mode

__all__ = [
    "doubled",
    "word_deletion",
    "contextual_substitution",
    "declutr_spans",
    "declutr_pairs",
    "SENTENCE",
    "MASK",
    "Template",
    "normalise_per_example",
    "adversarial_delta",
]


# --------------------------------------------------------------------------- dropout
def doubled(batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """The tokenised ``batch`` stacked on itself, ``(2B, T)``: one forward pass in training mode
    gives each sentence two dropout views (rows ``i`` and ``B + i``). Chapter "SimCSE"."""
    return {k: torch.cat([v, v]) for k, v in batch.items()}


# --------------------------------------------------------------------------- SCCL's augmentations
def word_deletion(texts: Sequence[str], p: float = 0.2, seed: int = 0) -> list[str]:
    """Delete each word with probability ``p`` (at least one word is kept): an offline augmentation.

    The SCCL paper's augmentations substitute words with a masked language model
    (:func:`contextual_substitution`); a model without an MLM head, such as the quick
    profile's MiniLM, cannot, and deletion is the documented offline stand-in.
    """
    if not 0 <= p < 1:
        raise ValueError(f"p must lie in [0, 1), got {p}")
    rng = random.Random(seed)
    out = []
    for text in texts:
        words = text.split()
        kept = [w for w in words if rng.random() >= p]
        out.append(" ".join(kept) if kept else (rng.choice(words) if words else text))
    return out


def _whole_word(token: str, original: str) -> bool:
    """A usable substitute: a whole word (not a ``##`` continuation piece) other than the original."""
    token = token.strip()
    return bool(token) and not token.startswith("##") and token.lower() != original.lower()


@torch.no_grad()
def contextual_substitution(
    texts: Sequence[str], mlm: nn.Module, tokenizer, fraction: float = 0.2, top_k: int = 10, seed: int = 0, batch_size: int = 64
) -> list[str]:
    """Replace ``fraction`` of each text's words by a masked LM's guess (the Contextual Augmenter).

    The chosen words are masked together (one [MASK] per word) and each is replaced by a
    token sampled from the model's ``top_k`` predictions that are whole words other than the
    original (special tokens and ``##`` word pieces are skipped).
    ``mlm`` must be a ``transformers`` model with an MLM head (``AutoModelForMaskedLM``).
    """
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must lie in (0, 1), got {fraction}")
    if tokenizer.mask_token_id is None:
        raise ValueError("tokenizer has no mask token; contextual substitution needs a masked LM")
    generator = torch.Generator().manual_seed(seed)
    rng = random.Random(seed)
    special = set(tokenizer.all_special_ids)
    device = next(mlm.parameters()).device
    out: list[str] = []
    with eval_mode(mlm):
        for start in range(0, len(texts), batch_size):
            chunk = [t.split() for t in texts[start : start + batch_size]]
            chosen = [sorted(rng.sample(range(len(w)), max(1, round(fraction * len(w))))) if w else [] for w in chunk]
            masked = [[tokenizer.mask_token if i in set(c) else w for i, w in enumerate(ws)] for ws, c in zip(chunk, chosen)]
            batch = tokenizer([" ".join(m) for m in masked], padding=True, truncation=True, return_tensors="pt").to(device)
            logits = mlm(**batch).logits.float().cpu()
            for row, (words, picks) in enumerate(zip(chunk, chosen)):
                positions = (batch["input_ids"][row] == tokenizer.mask_token_id).nonzero().flatten().cpu()
                words = list(words)
                for word_index, position in zip(picks, positions.tolist()):  # truncated masks keep their word
                    top = logits[row, position].topk(top_k + len(special) + 1).indices.tolist()
                    candidates = [t for t in top if t not in special and _whole_word(tokenizer.decode([t]), words[word_index])]
                    if not candidates:  # nothing usable among the top guesses: keep the word
                        continue
                    choice = candidates[int(torch.randint(min(top_k, len(candidates)), (1,), generator=generator))]
                    words[word_index] = tokenizer.decode([choice]).strip()
                out.append(" ".join(words))
    return out


# --------------------------------------------------------------------------- DeCLUTR spans
def declutr_spans(
    n_tokens: int, min_length: int, max_length: int, rng: np.random.Generator
) -> tuple[tuple[int, int], tuple[int, int]]:
    r"""Sample an anchor span and a positive span of one document, as ``(start, end)`` pairs.

    Giorgi et al. (2021), section 2: with :math:`p_a \sim \mathrm{Beta}(4, 2)` and
    :math:`p_p \sim \mathrm{Beta}(2, 4)`, the lengths are
    :math:`\ell = \lfloor p (\ell_{max} - \ell_{min}) + \ell_{min} \rfloor`, so anchors tend
    to be long and positives short. The anchor starts uniformly in the document; the
    positive starts uniformly in :math:`[s_a - \ell_p, s_a + \ell_a]`, so it overlaps the
    anchor, sits next to it, or lies inside it (clipped to the document).
    """
    if not 1 <= min_length <= max_length:
        raise ValueError(f"need 1 <= min_length <= max_length, got {min_length} and {max_length}")
    if n_tokens < max_length:
        raise ValueError(f"the document ({n_tokens} tokens) must be at least max_length ({max_length}) long")
    anchor_len = int(rng.beta(4, 2) * (max_length - min_length) + min_length)
    positive_len = int(rng.beta(2, 4) * (max_length - min_length) + min_length)
    anchor_start = int(rng.integers(0, n_tokens - anchor_len + 1))
    low = max(0, anchor_start - positive_len)
    high = min(n_tokens - positive_len, anchor_start + anchor_len)
    positive_start = int(rng.integers(low, high + 1))
    return (anchor_start, anchor_start + anchor_len), (positive_start, positive_start + positive_len)


def declutr_pairs(
    documents: Sequence[str], min_length: int = 8, max_length: int = 32, pairs_per_document: int = 1, seed: int = 0
) -> dict[str, list[str]]:
    """Anchor/positive span pairs (``{"anchor": [...], "positive": [...]}``) from documents.

    Spans are counted in whitespace words; documents shorter than ``max_length`` words are
    skipped. Train on them with :func:`~contrastive_tutorial.methods.simcse.train_simcse` (the other anchors' positives are the
    negatives). DeCLUTR itself adds a masked-language-model loss, which is left out here.
    """
    rng = np.random.default_rng(seed)
    pairs: dict[str, list[str]] = {"anchor": [], "positive": []}
    for document in documents:
        words = document.split()
        if len(words) < max_length:
            continue
        for _ in range(pairs_per_document):
            (a0, a1), (p0, p1) = declutr_spans(len(words), min_length, max_length, rng)
            pairs["anchor"].append(" ".join(words[a0:a1]))
            pairs["positive"].append(" ".join(words[p0:p1]))
    if not pairs["anchor"]:
        raise ValueError(f"no document has at least max_length ({max_length}) words")
    return pairs


# --------------------------------------------------------------------------- prompt templates
SENTENCE, MASK = "[X]", "[MASK]"


@dataclass(frozen=True)
class Template:
    """A prompt template with one sentence slot ``[X]`` and one ``[MASK]``, tokenised once.

    ``prefix`` and ``suffix`` are the token ids before and after the sentence (without
    [CLS]/[SEP]); exactly one of them holds the tokenizer's mask id.
    """

    text: str
    prefix: tuple[int, ...]
    suffix: tuple[int, ...]
    mask_id: int

    @classmethod
    def parse(cls, text: str, tokenizer) -> "Template":
        if text.count(SENTENCE) != 1:
            raise ValueError(f"template must contain the sentence slot {SENTENCE} exactly once, got {text!r}")
        if text.count(MASK) != 1:
            raise ValueError(f"template must contain {MASK} exactly once, got {text!r}")
        if tokenizer.mask_token_id is None:
            raise ValueError("tokenizer has no mask token; a prompt needs one")
        before, after = text.split(SENTENCE)

        def ids(part: str) -> tuple[int, ...]:
            part = part.replace(MASK, tokenizer.mask_token)
            return tuple(tokenizer(part.strip(), add_special_tokens=False)["input_ids"]) if part.strip() else ()

        template = cls(text, ids(before), ids(after), tokenizer.mask_token_id)
        if (template.prefix + template.suffix).count(template.mask_id) != 1:
            raise ValueError(f"template {text!r} must tokenise to exactly one mask token")
        return template

    @property
    def mask_in_prefix(self) -> bool:
        return self.mask_id in self.prefix

    def mask_offset(self, sentence_length: int) -> int:
        """Position of [MASK] in ``[CLS] prefix sentence suffix [SEP]`` for a sentence of that many tokens."""
        if self.mask_in_prefix:
            return 1 + self.prefix.index(self.mask_id)
        return 1 + len(self.prefix) + sentence_length + self.suffix.index(self.mask_id)


# --------------------------------------------------------------------------- adversarial perturbations
def normalise_per_example(g: Tensor, eps: float = 1e-12) -> Tensor:
    """``g / ||g||_2`` with the norm over every dimension but the first (one norm per example)."""
    norms = g.flatten(1).norm(dim=1).clamp_min(eps)
    return g / norms.view(-1, *([1] * (g.dim() - 1)))


def adversarial_delta(
    loss_of: Callable[[Tensor], Tensor],
    embeddings: Tensor,
    epsilon: float,
    steps: int = 1,
    step_size: float | None = None,
) -> Tensor:
    """A perturbation of ``embeddings`` (``(B, T, D)``) of L2 norm at most ``epsilon`` per example that increases ``loss_of``.

    ``loss_of(embeddings + delta)`` must return a scalar. One step (the default) is FGM:
    :math:`\\delta = \\epsilon\\, g/\\lVert g\\rVert`. With ``steps = k`` it is PGD:
    :math:`\\delta \\leftarrow \\Pi_{\\epsilon}(\\delta + \\eta\\, g/\\lVert g\\rVert)` from
    :math:`\\delta = 0`, step size :math:`\\eta` (default :math:`2\\epsilon / k`), each step projected
    back onto the ball. Returned detached: the model is not trained through it.
    """
    if epsilon < 0:
        raise ValueError(f"epsilon must be >= 0, got {epsilon}")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if embeddings.dim() != 3:
        raise ValueError(f"embeddings must have shape (B, T, D), got {tuple(embeddings.shape)}")
    step_size = epsilon if steps == 1 else (step_size or 2 * epsilon / steps)
    base = embeddings.detach()
    delta = torch.zeros_like(base)
    for _ in range(steps):
        delta.requires_grad_(True)
        (grad,) = torch.autograd.grad(loss_of(base + delta), delta)
        with torch.no_grad():
            delta = delta + step_size * normalise_per_example(grad)
            norms = delta.flatten(1).norm(dim=1).clamp_min(1e-12)
            delta = delta * (epsilon / norms).clamp(max=1.0).view(-1, 1, 1)
    return delta.detach()
