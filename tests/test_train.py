"""The training layer: the loop, its records and stops, the precision rule, batches, schedule,
eval mode, progress, checkpoints and resuming, gradient caching and batched inference."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from contrastive_tutorial import losses as L
from contrastive_tutorial.train import Batches, eval_mode, linear_schedule, precision, train
from tool_modules import load


class Regression(nn.Module):
    """A method: a linear model and its mean squared error."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Linear(3, 1)
        self.after = 0

    def loss(self, x, y):
        return F.mse_loss(self.net(x).squeeze(1), y)

    def after_step(self) -> None:
        self.after += 1


def _data(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=g)
    return x, x @ torch.tensor([1.0, -2.0, 0.5]) + 0.01 * torch.randn(n, generator=g)


# ----------------------------------------------------------------- the loop
def test_train_reduces_loss_records_epochs_and_calls_after_step():
    torch.manual_seed(0)
    x, y = _data()
    method = Regression()
    batches = Batches(64, 16, seed=0, collate=lambda idx: (x[idx], y[idx]))
    history = train(method, batches, torch.optim.SGD(method.parameters(), lr=0.1), epochs=5, progress=False,
                    on_epoch_end=lambda e: {"double": 2 * e})
    assert history["epoch"] == [1, 2, 3, 4, 5] and history["double"][-1] == 10
    assert history["step"] == [4, 8, 12, 16, 20] and method.after == 20
    assert history["loss"][-1] < 0.1 * history["loss"][0]
    assert list(history.to_frame().columns[:4]) == ["epoch", "step", "loss", "seconds"]


class Climb(nn.Module):
    """Loss -w on a constant input: SGD at lr 1 raises w by 1 per step."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(()))

    def loss(self, batch):
        return -self.w * batch


def test_train_evaluates_every_n_steps_and_keeps_the_best_weights():
    method = Climb()
    history = train(method, [torch.ones(())] * 3, torch.optim.SGD(method.parameters(), lr=1.0), epochs=2,
                    progress=False, evaluate=lambda: {"score": -abs(method.w.item() - 2.0)}, eval_every=2,
                    keep="best:score")
    assert history["step"] == [0, 2, 3, 4, 6]
    assert history["epoch"] == [0, 1, 1, 2, 2]
    assert history["score"] == [-2.0, 0.0, -1.0, -2.0, -4.0]
    assert method.w.item() == 2.0  # restored from step 2
    assert history["loss"][1:] == [-0.5, -2.0, -3.0, -4.5]  # mean since the previous record
    last = Climb()
    train(last, [torch.ones(())] * 3, torch.optim.SGD(last.parameters(), lr=1.0), epochs=2, progress=False,
          evaluate=lambda: {"score": 0.0}, eval_every=2)
    assert last.w.item() == 6.0  # keep="last" is the default


def test_steps_cut_across_epochs_and_epochs_cut_steps():
    method = Climb()
    history = train(method, [torch.ones(())] * 3, torch.optim.SGD(method.parameters(), lr=1.0), epochs=5, steps=4,
                    progress=False)
    assert history["step"] == [3, 4] and method.w.item() == 4.0
    method = Climb()
    train(method, [torch.ones(())] * 3, torch.optim.SGD(method.parameters(), lr=1.0), epochs=1, steps=10,
          progress=False)
    assert method.w.item() == 3.0


def test_train_rejects_bad_settings():
    method = Climb()
    opt = torch.optim.SGD(method.parameters(), lr=1.0)
    batches = [torch.ones(())]
    for kwargs, match in [({}, "epochs or steps"), ({"epochs": 0}, "epochs"), ({"steps": 0}, "steps"),
                          ({"epochs": 1, "eval_every": 2}, "eval_every"), ({"epochs": 1, "keep": "best"}, "keep"),
                          ({"epochs": 1, "keep": "best:a"}, "evaluate"), ({"epochs": 1, "clip_grad_norm": 0.0}, "clip"),
                          ({"epochs": 1, "checkpoint": "x.pt"}, "Batches")]:
        with pytest.raises(ValueError, match=match):
            train(method, batches, opt, progress=False, **kwargs)
    with pytest.raises(KeyError, match="'b' is not among"):
        train(method, batches, opt, epochs=1, evaluate=lambda: {"a": 1.0}, keep="best:b", progress=False)
    with pytest.raises(ValueError, match="no batch"):
        train(method, [], opt, epochs=1, progress=False)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_a_non_finite_loss_stops_before_the_weights_change(bad):
    class Explodes(Climb):
        def loss(self, batch):
            return self.w * 0 - batch * (-bad if self.w.item() >= 2 else self.w)

    method = Explodes()
    with pytest.raises(FloatingPointError, match=f"became {bad} at step 3"):
        train(method, [torch.ones(())] * 5, torch.optim.SGD(method.parameters(), lr=1.0), epochs=1, progress=False)
    assert method.w.item() == 2.0  # two good steps; the third never updated the weight


def test_gradient_clipping_caps_the_global_norm():
    class Steep(Climb):
        def loss(self, batch):
            return -100.0 * self.w * batch

    method = Steep()
    train(method, [torch.ones(())], torch.optim.SGD(method.parameters(), lr=1.0), epochs=1, clip_grad_norm=1.0,
          progress=False)
    assert method.w.item() == pytest.approx(1.0)  # the gradient -100 was clipped to norm 1


def test_progress_shows_a_total_and_the_expected_duration(capsys, monkeypatch):
    import contrastive_tutorial.train as T

    clock = iter(range(0, 10_000, 3))  # every call to the clock moves it 3 s on
    monkeypatch.setattr(T.time, "perf_counter", lambda: float(next(clock)))
    method = Climb()
    train(method, [torch.ones(())] * 20, torch.optim.SGD(method.parameters(), lr=0.01), epochs=1, desc="climb",
          progress=True)
    out = capsys.readouterr().out
    assert "climb: about" in out and "to go for 20 steps" in out
    assert "/20" in out  # the bar knows its total, so it shows an ETA
    monkeypatch.undo()
    train(method, [torch.ones(())] * 20, torch.optim.SGD(method.parameters(), lr=0.01), epochs=1, desc="climb")
    assert capsys.readouterr().out == ""  # by default a run of a few milliseconds stays quiet
    monkeypatch.setenv("CT_PROGRESS", "0")  # the book's build: no bar and no estimate, however long the run
    slow = iter(range(0, 100_000, 30))
    monkeypatch.setattr(T.time, "perf_counter", lambda: float(next(slow)))
    train(method, [torch.ones(())] * 20, torch.optim.SGD(method.parameters(), lr=0.01), epochs=1, desc="climb")
    assert capsys.readouterr().out == ""


# ----------------------------------------------------------------- precision
@pytest.mark.parametrize("capability,expected", [((7, 5), torch.float16), ((7, 0), torch.float16),
                                                 ((8, 0), torch.bfloat16), ((9, 0), torch.bfloat16)])
def test_precision_rule_follows_the_compute_capability(monkeypatch, capability, expected):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    rule = precision("cuda")
    assert rule.dtype == expected
    assert rule.name == {torch.float16: "fp16", torch.bfloat16: "bf16"}[expected]
    assert precision("cuda", amp=False).dtype is None


def test_precision_on_the_cpu_is_float32_unless_asked():
    assert precision("cpu").dtype is None and precision("cpu").name == "fp32"
    assert precision("cpu", amp="fp16").scaler() is not None  # fp16 needs loss scaling
    assert precision("cpu", amp="bf16").scaler() is None
    assert precision("cpu", amp=True).dtype == torch.bfloat16
    assert precision("cpu", amp="fp16").dtype == torch.float16
    with pytest.raises(ValueError, match="amp"):
        precision("cpu", amp="fp8")


def test_fp16_training_runs_through_the_grad_scaler():
    torch.manual_seed(0)
    x, y = _data()
    method = Regression()
    batches = Batches(64, 16, seed=0, collate=lambda idx: (x[idx], y[idx]))
    history = train(method, batches, torch.optim.SGD(method.parameters(), lr=0.05), epochs=3, amp="fp16",
                    progress=False)
    assert all(np.isfinite(history["loss"])) and history["loss"][-1] < history["loss"][0]


def _loss_cases(dtype):
    g = torch.Generator().manual_seed(0)
    z1, z2 = (torch.randn(16, 8, generator=g) for _ in range(2))
    unit1, unit2 = F.normalize(z1, dim=1), F.normalize(z2, dim=1)
    labels = torch.arange(16) % 4
    centres = torch.randn(4, 8, generator=g)
    q = L.student_t_assignment(z1, centres)
    queue = F.normalize(torch.randn(32, 8, generator=g), dim=1)
    scores1, scores2 = (u @ F.normalize(centres, dim=1).T for u in (unit1, unit2))  # cosines, as SwAV's
    c = lambda t: t.to(dtype)  # noqa: E731
    return {
        "info_nce": lambda: L.info_nce(c(z1), c(z2), torch.arange(16), 0.05),
        "nt_xent": lambda: L.nt_xent(c(z1), c(z2), 0.05),
        "simcse": lambda: L.simcse_loss(c(z1), c(z2), 0.05),
        "supcon": lambda: L.supcon_loss(c(z1), labels, 0.07),
        "tension": lambda: L.contrastive_tension_loss(c(z1), c(z2), (labels == 0).float()),
        "alignment": lambda: L.alignment(c(unit1), c(unit2)),
        "uniformity": lambda: L.uniformity(c(unit1)),
        "student_t": lambda: L.student_t_assignment(c(z1), c(centres)).sum(),
        "cluster_kl": lambda: L.cluster_kl_loss(c(q)),
        "byol": lambda: L.byol_loss(c(z1), c(z2)),
        "moco": lambda: L.moco_loss(c(z1), c(unit2), c(queue), 0.2),
        "swav": lambda: L.swav_loss(c(scores1), c(scores2), 0.1, 0.05),
        "barlow": lambda: L.barlow_twins_loss(c(z1), c(z2)),
    }


@pytest.mark.parametrize("autocast_dtype", [torch.bfloat16, torch.float16])
def test_every_loss_is_finite_and_close_to_float64_under_autocast(autocast_dtype):
    reference = {name: case().item() for name, case in _loss_cases(torch.float64).items()}
    for name, case in _loss_cases(torch.float32).items():
        with torch.autocast("cpu", dtype=autocast_dtype):
            value = case()
        assert value.dtype == torch.float32, name  # computed in float32 inside the autocast region
        assert torch.isfinite(value), name
        assert value.item() == pytest.approx(reference[name], rel=1e-4, abs=1e-5), name


def test_similarity_is_float32_under_autocast_even_for_bf16_inputs():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(8, 16, generator=g), torch.randn(8, 16, generator=g)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        s = L.similarity(a, b)
        s_half = L.similarity(a.bfloat16(), b.bfloat16())
    assert s.dtype == s_half.dtype == torch.float32
    torch.testing.assert_close(s.double(), L.similarity(a.double(), b.double()), rtol=1e-6, atol=1e-6)


def test_fast_attention_kernel_follows_the_device(monkeypatch):
    from contrastive_tutorial.fast import attention_kernel

    assert attention_kernel("cpu", torch.bfloat16) is None
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 5))
    assert attention_kernel("cuda", torch.float16) == "efficient"
    assert attention_kernel("cuda", torch.bfloat16) is None  # sm75 refuses bf16 in that kernel
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (9, 0))
    assert attention_kernel("cuda", torch.bfloat16) == "efficient"
    with pytest.raises(ValueError, match="attention"):
        attention_kernel("cuda", None, "fastest")


# ----------------------------------------------------------------- helpers
def test_batches_drop_the_ragged_batch_and_cover_every_example_once():
    batches = Batches(10, 3, seed=0)
    epoch = list(batches())
    assert len(batches) == 3 and [len(b) for b in epoch] == [3, 3, 3] and len(set(sum(epoch, []))) == 9
    ragged = Batches(10, 3, seed=0, drop_last=False)
    epoch = list(ragged())
    assert len(ragged) == 4 and sorted(sum(epoch, [])) == list(range(10))
    assert list(Batches(10, 3, seed=0)()) != list(Batches(10, 3, seed=1)())
    assert list(batches()) != epoch[:3]  # a new order every pass
    torch_order = list(Batches(10, 5, generator=torch.Generator().manual_seed(0))())
    assert sum(torch_order, []) == torch.randperm(10, generator=torch.Generator().manual_seed(0)).tolist()
    with pytest.raises(ValueError, match="larger than the data"):
        Batches(2, 3)
    with pytest.raises(ValueError, match="batch_size"):
        Batches(10, 0)


def test_no_duplicates_batches_never_repeat_a_key():
    keys = ["a", "a", "a", "b", "c", "d", "e", "f", "g", "h", "b", "c"]
    batches = Batches(len(keys), 4, seed=0, keys=keys)
    for seed in range(20):
        batches.generator = np.random.default_rng(seed)
        epoch = list(batches())
        assert epoch and all(len({keys[i] for i in b}) == len(b) == 4 for b in epoch)
        assert len(set(sum(epoch, []))) == sum(map(len, epoch))  # no example twice in a pass
    plain = Batches(len(keys), 4, seed=3)
    assert any(len({keys[i] for i in b}) < 4 for s in range(20) for b in Batches(len(keys), 4, seed=s)())
    assert len(plain) == 3


def test_linear_schedule_warms_up_then_decays_to_zero():
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(()))], lr=1.0)
    schedule = linear_schedule(opt, total_steps=10, warmup_steps=2)
    rates = []
    for _ in range(11):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        schedule.step()
    assert rates[:3] == [0.0, 0.5, 1.0] and rates[-1] == 0.0
    assert rates[6] == pytest.approx(0.5)  # halfway through the decay from step 2 to step 10
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(()))], lr=1.0)
    plain = linear_schedule(opt, total_steps=4)
    assert [plain.lr_lambdas[0](s) for s in range(5)] == [1.0, 0.75, 0.5, 0.25, 0.0]
    with pytest.raises(ValueError, match="warmup"):
        linear_schedule(opt, 4, warmup_steps=4)


def test_eval_mode_restores_each_module_also_on_error():
    net = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5))
    net[1].eval()  # a mixed state must come back as it was
    with pytest.raises(RuntimeError):
        with eval_mode(net):
            assert not net.training and not net[0].training
            raise RuntimeError("boom")
    assert net.training and net[0].training and not net[1].training
    with eval_mode(net, training=True):
        assert net[1].training
    assert not net[1].training


# ----------------------------------------------------------------- checkpoints and resuming
class Noisy(nn.Module):
    """A method that uses every random source a chapter uses: dropout (torch), NumPy's and Python's
    global generators, a views generator of its own, and momentum state in Adam."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(3, 8), nn.Dropout(0.3), nn.Linear(8, 1))
        self.views = torch.Generator().manual_seed(7)
        self.calls = 0

    def loss(self, x, y):
        self.calls += 1
        noise = torch.randn(x.shape, generator=self.views) * 0.1
        jitter = float(np.random.rand()) * 1e-3
        import random

        return F.mse_loss(self.net(x + noise).squeeze(1), y) + jitter * random.random()


class Interrupt(Exception):
    pass


def _noisy_run(tmp_path, stop_at=None, checkpoint=True):
    import random

    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    x, y = _data(40, seed=1)
    method = Noisy()
    if stop_at is not None:
        original = method.loss

        def loss(*batch):
            if method.calls == stop_at:
                raise Interrupt
            return original(*batch)

        method.loss = loss
    batches = Batches(40, 8, seed=0, collate=lambda idx: (x[idx], y[idx]))
    optimizer = torch.optim.Adam(method.parameters(), lr=0.01)
    history = train(method, batches, optimizer, epochs=3, scheduler=linear_schedule(optimizer, 15),
                    generators=[method.views], checkpoint=tmp_path / "run.pt" if checkpoint else None,
                    checkpoint_every=0.0, progress=False)
    return method, history


def test_an_interrupted_run_resumes_to_the_same_losses_and_weights(tmp_path):
    reference, ref_history = _noisy_run(tmp_path / "plain", checkpoint=False)
    with pytest.raises(Interrupt):
        _noisy_run(tmp_path / "resumed", stop_at=7)  # in the middle of the second epoch
    saved = torch.load(tmp_path / "resumed" / "run.pt", weights_only=False)
    assert saved["state"]["step"] == 7 and not saved["finished"]
    assert "optimizer" in saved and "rng" in saved and "batches" in saved
    resumed, history = _noisy_run(tmp_path / "resumed")
    assert [r["loss"] for r in history] == [r["loss"] for r in ref_history]
    for a, b in zip(resumed.state_dict().values(), reference.state_dict().values()):
        assert torch.equal(a, b)  # bit for bit
    # a finished run is not trained again: its history comes back from the checkpoint
    again, history_again = _noisy_run(tmp_path / "resumed")
    assert again.calls == 0 and [r["loss"] for r in history_again] == [r["loss"] for r in ref_history]
    for a, b in zip(again.state_dict().values(), reference.state_dict().values()):
        assert torch.equal(a, b)


# ----------------------------------------------------------------- memory
def test_gradient_cached_supervised_simcse_has_the_plain_gradients(tiny_encoder_parts):
    from contrastive_tutorial.encoders import TextEncoder
    from contrastive_tutorial.methods.simcse import CachedSimCSE, SimCSE

    tokenizer, model = tiny_encoder_parts
    torch.manual_seed(0)
    encoder = TextEncoder(copy.deepcopy(model), tokenizer, pooler="cls", max_length=12).eval()  # no dropout
    words = ["cat", "dog", "rain", "sun", "tree", "car", "sea", "bird"]
    batch = {"anchor": [f"a {w} sits here" for w in words], "positive": [f"the {w} is here" for w in words],
             "negative": [f"no {w} at all today" for w in words]}
    plain = SimCSE(encoder, 0.05)
    loss = plain.loss(batch)
    loss.backward()
    expected = {k: p.grad.clone() for k, p in encoder.named_parameters() if p.grad is not None}
    encoder.zero_grad(set_to_none=True)
    cached = CachedSimCSE(encoder, 0.05, chunk_size=3)
    value = cached.backward(batch, scale=4.0)
    assert value.item() == pytest.approx(loss.item(), rel=1e-5)
    for name, grad in expected.items():
        torch.testing.assert_close(encoder.get_parameter(name).grad / 4.0, grad, rtol=1e-4, atol=1e-6)


def test_batched_inference_memory_does_not_grow_with_the_data(tiny_mlm_parts):
    """The MLM top-k representation and every encode run one batch at a time: the largest input
    the model sees stays at the batch size however many sentences there are."""
    from contrastive_tutorial.methods.promptbert import PromptEncoder, mlm_topk_representation

    tokenizer, mlm = tiny_mlm_parts
    encoder = PromptEncoder(mlm, tokenizer, 'This sentence : "[X]" means [MASK] .', max_length=8)
    seen = []
    hook = mlm.register_forward_pre_hook(lambda m, args, kwargs: seen.append(kwargs["input_ids"].shape[0]),
                                         with_kwargs=True)
    try:
        for n in (10, 100):
            seen.clear()
            sentences = [f"sentence {i} " + "word " * (i % 5) for i in range(n)]
            out = mlm_topk_representation(encoder, sentences, k=5, batch_size=16)
            assert out.shape == (n, mlm.config.hidden_size) and max(seen) <= 16
    finally:
        hook.remove()
    small = mlm_topk_representation(encoder, ["a b", "c d e"], k=5, batch_size=1)
    both = mlm_topk_representation(encoder, ["a b", "c d e"], k=5, batch_size=8)
    torch.testing.assert_close(small, both, rtol=1e-4, atol=1e-5)  # batching changes nothing


def test_gradient_caching_turns_on_only_where_gpu_memory_is_short(monkeypatch):
    from types import SimpleNamespace

    from contrastive_tutorial.methods.simcse import auto_chunk_size

    assert auto_chunk_size("cpu", 512) is None
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda device: SimpleNamespace(total_memory=16 * 2**30))
    assert auto_chunk_size("cuda", 512) == 128  # a T4
    assert auto_chunk_size("cuda", 64) is None  # the batch fits in one chunk anyway
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda device: SimpleNamespace(total_memory=80 * 2**30))
    assert auto_chunk_size("cuda", 512) is None  # an H100


def test_training_arguments_that_would_learn_nothing_are_refused():
    method, other = Climb(), Climb()
    batches = [torch.ones(())] * 2
    with pytest.raises(ValueError, match="not the method's"):
        train(method, batches, torch.optim.SGD(other.parameters(), lr=1.0), epochs=1, progress=False)
    with pytest.raises(ValueError, match="learning rate 0"):
        train(method, batches, torch.optim.SGD(method.parameters(), lr=0.0), epochs=1, progress=False)
    warm = torch.optim.SGD(method.parameters(), lr=1.0)
    linear_schedule(warm, 4, warmup_steps=2)  # lr 0 at step 0 by design: accepted
    train(method, batches, warm, epochs=1, progress=False)
    with pytest.raises(TypeError, match="epochs must be an integer"):
        train(method, batches, warm, epochs=1.5, progress=False)
    with pytest.raises(TypeError, match="optimizer must be"):
        train(method, batches, "adam", epochs=1, progress=False)

    class Vector(Climb):
        def loss(self, batch):
            return self.w * torch.ones(3)

    class Number(Climb):
        def loss(self, batch):
            return 1.0

    for bad, match in ((Vector(), r"scalar tensor .*\(3,\)"), (Number(), "scalar tensor .*float")):
        with pytest.raises(TypeError, match=match):
            train(bad, batches, torch.optim.SGD(bad.parameters(), lr=1.0), epochs=1, progress=False)
    with pytest.warns(RuntimeWarning, match="no evaluation gave a finite score"):
        train(method, batches, torch.optim.SGD(method.parameters(), lr=1.0), epochs=1, progress=False,
              evaluate=lambda: {"score": float("nan")}, eval_every=1, keep="best:score")


# ------------------------------------------------------ every trainer under bfloat16 autocast
# Smoke mode trains in float32 on a CPU (emulated bfloat16 is about twenty times slower on an AVX2
# CPU: contrastive_tutorial.smoke), so the path a GPU of compute capability 8.0+ takes through each
# trainer (autocast around the forward pass, float32 losses, the optimiser on float32 weights) is
# run here, on small models: amp=None is made to mean bfloat16, and every step must enter autocast.
BF16_TRAINERS = ("simclr", "swav", "simcse", "uscal", "scl", "sccl", "promptbert")
SENTENCES = ["a man plays a guitar", "a woman reads a book", "the dog runs in the park", "a child eats an apple",
             "two men ride horses", "the cat sleeps on a sofa", "a girl sings a song", "the sun sets over the sea"]


@pytest.fixture
def bf16_by_default():
    """``amp=None`` means bfloat16 autocast on the CPU; yields the list of the autocast types the steps used."""
    with load("gpu_precision", "benchmarks").default_amp("bf16") as used:
        yield used


def _train_under_default_amp(trainer: str, tokenizer, bert, device: str = "cpu") -> list[float]:
    """Two or three steps of ``trainer`` with its default ``amp`` on ``device``; the history's losses.

    Also run on a GPU by benchmarks/gpu_precision.py."""
    from contrastive_tutorial.data import ImageData
    from contrastive_tutorial.encoders import SmallCNN, TextEncoder
    from contrastive_tutorial.methods import adversarial, promptbert, sccl, scl
    from contrastive_tutorial.methods.beyond import SwAV
    from contrastive_tutorial.methods.simclr import SimCLR, train_views
    from contrastive_tutorial.methods.simcse import train_simcse
    from contrastive_tutorial.views import ImageViews

    torch.manual_seed(0)
    text = lambda pooler="cls": TextEncoder(copy.deepcopy(bert), tokenizer, pooler=pooler, max_length=12).to(device)  # noqa: E731
    if trainer in ("simclr", "swav"):
        images = torch.randint(0, 256, (32, 3, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
        labels = torch.arange(32) % 2
        data = ImageData(images[:16], labels[:16], images[16:], labels[16:], ["a", "b"])
        method = SimCLR(SmallCNN(3, 8), 8, 16) if trainer == "simclr" else SwAV(SmallCNN(3, 8), 8, 16, n_prototypes=6)
        views = ImageViews.simclr()
        history = train_views(method.to(device), data, views, epochs=1, batch_size=8, lr=1e-2, device=device,
                              progress=False)
    elif trainer == "simcse":
        history = train_simcse(text(), SENTENCES, batch_size=4, lr=1e-3, max_steps=2, progress=False)
    elif trainer == "uscal":
        history = adversarial.train_uscal(text(), SENTENCES, epsilon=0.5, alpha=0.5, batch_size=4, max_steps=2,
                                          progress=False)
    elif trainer == "scl":
        classifier = scl.TextClassifier(text("cls_before_pooler"), n_classes=2).to(device)
        history = scl.train_classifier(classifier, SENTENCES, [0, 1] * 4, lambd=0.5, epochs=1, batch_size=4, lr=1e-3)
    elif trainer == "sccl":
        model = sccl.SCCL.from_kmeans(text("mean"), SENTENCES, 2, seed=0).to(device)
        history = sccl.train_sccl(model, SENTENCES, steps=2, batch_size=4, lr=1e-4, progress=False)
    else:
        encoder = promptbert.PromptEncoder(copy.deepcopy(bert), tokenizer, 'This sentence : "[X]" means [MASK] .',
                                           max_length=8).to(device)
        history = promptbert.train_prompt_contrast(encoder, "[X] means [MASK] .", SENTENCES, batch_size=4, lr=1e-3,
                                                   max_steps=2, progress=False)
    return list(history["loss"])


@pytest.mark.parametrize("trainer", BF16_TRAINERS)
def test_every_trainer_runs_under_bf16_autocast(trainer, bf16_by_default, tiny_encoder_parts):
    losses = _train_under_default_amp(trainer, *tiny_encoder_parts)
    assert bf16_by_default and set(bf16_by_default) == {"bf16"}  # every step went through autocast
    assert losses and all(np.isfinite(losses))
