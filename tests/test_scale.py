"""Gradient caching gives the gradients of the full-batch computation."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from contrastive_tutorial.losses import nt_xent, simcse_loss
from contrastive_tutorial.scale import cached_backward


def _mlp(dropout: float = 0.0) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(dropout), nn.Linear(16, 5)).double()


def _grads(model: nn.Module) -> list[torch.Tensor]:
    grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad(set_to_none=True)
    return grads


@pytest.mark.parametrize("chunk_size", [1, 3, 8, 100])
def test_cached_gradients_equal_full_batch_gradients(chunk_size):
    model = _mlp()
    x1, x2 = torch.randn(8, 6, dtype=torch.float64), torch.randn(8, 6, dtype=torch.float64)
    full_loss = nt_xent(model(x1), model(x2), 0.2)
    full_loss.backward()
    expected = _grads(model)
    loss = cached_backward(model, (x1, x2), lambda a, b: nt_xent(a, b, 0.2), chunk_size)
    assert loss.item() == pytest.approx(full_loss.item(), rel=1e-12)
    for got, want in zip(_grads(model), expected):
        torch.testing.assert_close(got, want)


def test_dropout_masks_are_replayed_in_the_second_pass():
    """With dropout, the cached step equals the chunked computation with a graph from the same seed."""
    model = _mlp(dropout=0.5)
    x = torch.randn(10, 6, dtype=torch.float64)
    torch.manual_seed(1)
    out = [torch.cat([model(c) for c in x.split(4)]) for _ in range(2)]  # same inputs twice: SimCSE
    simcse_loss(out[0], out[1], 0.05).backward()
    expected = _grads(model)
    after_plain = torch.rand(1)
    torch.manual_seed(1)
    cached_backward(model, (x, x), lambda a, b: simcse_loss(a, b, 0.05), chunk_size=4)
    for got, want in zip(_grads(model), expected):
        torch.testing.assert_close(got, want)
    torch.testing.assert_close(torch.rand(1), after_plain)  # the generator ends where the plain run left it


def test_micro_batches_without_caching_give_different_gradients():
    """Why caching: summing per-chunk losses drops the negatives of the other chunks."""
    model = _mlp()
    x1, x2 = torch.randn(8, 6, dtype=torch.float64), torch.randn(8, 6, dtype=torch.float64)
    cached_backward(model, (x1, x2), lambda a, b: nt_xent(a, b, 0.2), chunk_size=4)
    cached = _grads(model)
    for a, b in zip(x1.split(4), x2.split(4)):
        (nt_xent(model(a), model(b), 0.2) / 2).backward()
    accumulated = _grads(model)
    assert any(not torch.allclose(c, a) for c, a in zip(cached, accumulated))


def test_dict_batches_of_a_transformer(tiny_encoder_parts):
    tokenizer, bert = tiny_encoder_parts
    bert.train()  # dropout on: the SimCSE views
    batch = tokenizer(["a cat sat", "dogs bark at night", "it rains", "the sun is out today", "hello"],
                      padding=True, return_tensors="pt")

    def encode(b):
        return bert(**b).last_hidden_state[:, 0]

    torch.manual_seed(3)
    chunks = [{k: v[i : i + 2] for k, v in batch.items()} for i in range(0, 5, 2)]
    views = [torch.cat([encode(c) for c in chunks]) for _ in range(2)]
    simcse_loss(views[0], views[1], 0.05).backward()
    expected = [p.grad.clone() for p in bert.parameters() if p.grad is not None]
    bert.zero_grad(set_to_none=True)
    torch.manual_seed(3)
    cached_backward(encode, (batch, batch), lambda a, b: simcse_loss(a, b, 0.05), chunk_size=2)
    got = [p.grad.clone() for p in bert.parameters() if p.grad is not None]
    bert.zero_grad(set_to_none=True)
    assert len(got) == len(expected) > 0
    for g, e in zip(got, expected):
        torch.testing.assert_close(g, e, atol=1e-6, rtol=1e-5)


def test_bad_arguments():
    model = _mlp()
    x = torch.randn(4, 6, dtype=torch.float64)
    with pytest.raises(ValueError, match="chunk_size"):
        cached_backward(model, (x, x), lambda a, b: nt_xent(a, b), 0)
    with pytest.raises(ValueError, match="batches"):
        cached_backward(model, (), lambda: torch.zeros(()), 2)


def test_grad_cache_benchmark_smoke():
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "grad_cache.py"
    out = subprocess.run([sys.executable, str(script), "--smoke"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "ratio cached / plain" in out.stdout


def test_gather_with_grad_is_the_identity_without_distributed():
    from contrastive_tutorial.scale import gather_with_grad

    x = torch.randn(3, 2)
    assert gather_with_grad(x) is x


def test_two_processes_with_gathered_negatives_equal_one_process_on_the_whole_batch(tmp_path):
    """torchrun, gloo backend, 2 processes of 4 examples each vs one process of 8."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    worker = Path(__file__).with_name("distributed_worker.py")
    out = tmp_path / "rank0.pt"
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(torchrun + [str(worker), str(out)], capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    result = torch.load(out)
    assert result["rows"] == 8  # the loss saw the global batch
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 5)).double()
    x1, x2 = torch.randn(8, 6, dtype=torch.float64), torch.randn(8, 6, dtype=torch.float64)
    loss = nt_xent(model(x1), model(x2), 0.2)
    loss.backward()
    torch.testing.assert_close(result["loss"], loss.detach())
    for got, want in zip(result["grads"], (p.grad for p in model.parameters())):
        torch.testing.assert_close(got, want)


def test_two_processes_train_one_step_of_each_recipe_like_one_process_on_the_whole_batch(tmp_path):
    """torchrun, gloo, 2 processes: a full training step through contrastive_tutorial.train (batch
    split, embeddings gathered with gradients, gradients averaged, Adam) equals one process's step."""
    import importlib.util
    import os
    import subprocess
    import sys
    from pathlib import Path

    worker = Path(__file__).with_name("distributed_train_worker.py")
    out = tmp_path / "rank0.pt"
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    done = subprocess.run(torchrun + [str(worker), str(out)], capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    two = torch.load(out)
    spec = importlib.util.spec_from_file_location("distributed_train_worker", worker)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    one = module.run()
    start = one.pop("start")
    for recipe, weights in one.items():
        assert two[recipe].keys() == weights.keys()
        # Adam's first step is about lr = 1e-2 per weight; the runs agree to rounding (1e-4 of it)
        atol = 1e-6 if recipe == "loop" else 1e-6 + 1e-2 * 1e-2
        for name, value in weights.items():
            torch.testing.assert_close(two[recipe][name], value, rtol=1e-5, atol=atol, msg=f"{recipe}: {name}")
    bert = {k[len("model."):]: v for k, v in one["simcse"].items() if k.startswith("model.")}
    assert any(not torch.equal(bert[k], v) for k, v in start.items())  # the step did change the weights
