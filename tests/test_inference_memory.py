"""Inference whose memory grows with the data: every evaluation path feeds its model a bounded batch.

Smoke mode's stand-in data are too small to run out of memory, so this defect class is checked
here instead: each path that encodes a data set (STS, probes, clustering, augmentation) is run
over more items than its batch size, and the largest batch its model ever sees is recorded.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from contrastive_tutorial.encoders import TextEncoder
from contrastive_tutorial.evaluate import embed
from contrastive_tutorial.methods import promptbert as pb
from contrastive_tutorial.methods import scl
from contrastive_tutorial.views.text import contextual_substitution

N, BATCH = 40, 8
SENTENCES = [f"sentence number {i} says {'more ' * (i % 5)}about item {i}" for i in range(N)]


def largest_batch(module: nn.Module, run) -> int:
    """Run ``run()`` and return the most rows ``module`` received in one call."""
    seen = []

    def hook(_, args, kwargs):
        x = kwargs.get("input_ids", args[0] if args else None)
        if x is None:
            x = kwargs.get("inputs_embeds")
        seen.append(len(x))

    handle = module.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        run()
    finally:
        handle.remove()
    assert seen, "the model was never called"
    return max(seen)


def test_text_encoder_paths_are_batched(tiny_encoder_parts):
    tokenizer, model = tiny_encoder_parts
    encoder = TextEncoder(model, tokenizer, pooler="mean", max_length=16)
    assert largest_batch(model, lambda: encoder.encode(SENTENCES, batch_size=BATCH)) <= BATCH
    assert largest_batch(model, lambda: encoder.encode_poolers(SENTENCES, ["mean", "first_last_avg"],
                                                               batch_size=BATCH)) <= BATCH
    classifier = scl.TextClassifier(encoder, n_classes=2)
    assert largest_batch(model, lambda: scl.accuracy(classifier, SENTENCES, [i % 2 for i in range(N)],
                                                     batch_size=BATCH)) <= BATCH


def test_prompt_and_mlm_paths_are_batched(tiny_mlm_parts):
    tokenizer, mlm = tiny_mlm_parts
    prompt = pb.PromptEncoder(mlm, tokenizer, 'This sentence : "[X]" means [MASK] .', max_length=16)
    assert largest_batch(mlm.base_model, lambda: prompt.encode(SENTENCES, batch_size=BATCH)) <= BATCH
    assert largest_batch(mlm.base_model, lambda: prompt.encode_variants(SENTENCES, batch_size=BATCH)) <= BATCH
    assert largest_batch(mlm, lambda: pb.mlm_topk_representation(prompt, SENTENCES, k=3, batch_size=BATCH)) <= BATCH
    assert largest_batch(mlm, lambda: contextual_substitution(SENTENCES, mlm, tokenizer, batch_size=BATCH)) <= BATCH


def test_image_embedding_is_batched():
    encoder = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 4))
    images = torch.randint(0, 256, (N, 3, 8, 8), dtype=torch.uint8)
    assert largest_batch(encoder, lambda: embed(encoder, images, batch_size=BATCH)) <= BATCH


def test_the_check_can_fail(tiny_encoder_parts):
    tokenizer, model = tiny_encoder_parts
    encoder = TextEncoder(model, tokenizer, pooler="mean", max_length=16)
    with pytest.raises(AssertionError):
        assert largest_batch(model, lambda: encoder.encode(SENTENCES, batch_size=N)) <= BATCH
