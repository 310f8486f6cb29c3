"""The fast path (contrastive_tutorial.fast): same arithmetic as the eager step, on CPU and as a CUDA graph."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from contrastive_tutorial.fast import CapturedStep, fast_adamw, fixed_length_batch, simcse_step
from contrastive_tutorial.losses import nt_xent, simcse_loss

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA GPU")


def _mlp(seed: int = 0, dropout: float = 0.0, device: str = "cpu") -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Dropout(dropout), nn.Linear(16, 4)).to(device)


def _loss_fn(model: nn.Module):
    def loss_fn(x: Tensor, y: Tensor) -> Tensor:  # noqa: F821 - annotations are strings
        z1, z2 = model(torch.cat([x, y])).chunk(2)
        return nt_xent(z1, z2, 0.5)

    return loss_fn


def _eager_steps(model: nn.Module, batches, lr: float = 1e-2) -> list[float]:
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    losses = []
    for x, y in batches:
        optimizer.zero_grad()
        loss = _loss_fn(model)(x, y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def _batches(n: int, device: str = "cpu"):
    g = torch.Generator().manual_seed(1)
    return [(torch.randn(6, 8, generator=g).to(device), torch.randn(6, 8, generator=g).to(device)) for _ in range(n)]


def test_captured_step_on_cpu_is_the_eager_step():
    batches = _batches(3)
    reference, model = _mlp(), _mlp()
    expected = _eager_steps(reference, batches)
    step = CapturedStep(_loss_fn(model), fast_adamw(model.parameters(), 1e-2, device="cpu"))
    got = [step(x, y).item() for x, y in batches]
    assert got == pytest.approx(expected, rel=1e-6)
    for p, q in zip(model.parameters(), reference.parameters()):
        torch.testing.assert_close(p, q)


def test_captured_step_rejects_bad_warmup():
    model = _mlp()
    with pytest.raises(ValueError, match="warmup"):
        CapturedStep(_loss_fn(model), fast_adamw(model.parameters(), 1e-2, device="cpu"), warmup=0)


def test_losses_trace_without_graph_breaks():
    """Value checks that read tensors back are skipped under torch.compile: one graph, no break."""
    z1, z2 = torch.randn(5, 4), torch.randn(5, 4)
    compiled = torch.compile(lambda a, b: simcse_loss(a, b, 0.05) + nt_xent(a, b, 0.5), backend="eager", fullgraph=True)
    torch.testing.assert_close(compiled(z1, z2), simcse_loss(z1, z2, 0.05) + nt_xent(z1, z2, 0.5))


def test_value_checks_still_run_eagerly():
    from contrastive_tutorial.losses import info_nce

    with pytest.raises(ValueError, match="positive_idx must lie"):
        info_nce(torch.randn(3, 4), torch.randn(5, 4), torch.tensor([0, 1, 7]), 0.1)


def test_fixed_length_batch_pads_every_batch_to_max_length(minilm_tokenizer):
    tokenizer = minilm_tokenizer
    batch = fixed_length_batch(tokenizer, ["a short one", "a somewhat longer sentence than the first one, by quite a few more words"], 12)
    assert batch["input_ids"].shape == batch["attention_mask"].shape == (2, 12)
    assert batch["attention_mask"][0].sum() < 12 == batch["attention_mask"][1].sum()
    with pytest.raises(ValueError, match="sentences"):
        fixed_length_batch(tokenizer, [], 12)


def test_simcse_step_matches_unsup_loss_on_cpu(tiny_encoder_parts):
    """Dropout off: the fast step's loss is simcse_loss on the doubled batch's [CLS] + MLP vectors."""
    import copy

    from contrastive_tutorial.encoders import TextEncoder

    tokenizer, model = tiny_encoder_parts
    encoder = TextEncoder(copy.deepcopy(model), tokenizer).train()
    encoder.model.eval()  # no dropout in the transformer, the MLP is still used (training mode)
    sentences = ["a cat sat on the mat", "stocks fell sharply today", "the weather is fine", "he plays chess"]
    batch = fixed_length_batch(encoder.tokenizer, sentences, 16)
    with torch.no_grad():
        z = encoder({k: torch.cat([v, v]) for k, v in batch.items()})
        expected = simcse_loss(*z.chunk(2), 0.05).item()
    step = simcse_step(encoder, fast_adamw(encoder.parameters(), 0.0, device="cpu"), 0.05, compile=False)
    assert step(batch["input_ids"], batch["attention_mask"]).item() == pytest.approx(expected, rel=1e-5)


@cuda
def test_cuda_graph_step_trains_like_eager():
    batches = _batches(4, "cuda")
    reference, model = _mlp(device="cuda"), _mlp(device="cuda")
    expected = _eager_steps(reference, batches)
    step = CapturedStep(_loss_fn(model), fast_adamw(model.parameters(), 1e-2, device="cuda"))
    got = [step(x, y).item() for x, y in batches]  # the warm-up steps are undone
    assert step.graph is not None
    assert got == pytest.approx(expected, rel=1e-4)
    for p, q in zip(model.parameters(), reference.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5)


@cuda
def test_cuda_graph_replays_draw_new_dropout_masks_and_keep_shapes():
    model = _mlp(dropout=0.5, device="cuda")
    step = CapturedStep(_loss_fn(model), fast_adamw(model.parameters(), 0.0, device="cuda"))
    x, y = _batches(1, "cuda")[0]
    losses = {step(x, y).item() for _ in range(4)}
    assert len(losses) > 1
    with pytest.raises(ValueError, match="captured shape"):
        step(x[:3], y[:3])
    with pytest.raises(ValueError, match="capturable"):
        CapturedStep(_loss_fn(model), torch.optim.AdamW(model.parameters()))(x, y)
