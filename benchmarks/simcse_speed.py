"""Training speed of unsupervised SimCSE: the package's steps against a plain Hugging Face loop.

Every path trains the same model (BERT-base's shape with random weights by default, built
from ``BertConfig()``; speed does not depend on the weights) on the same real sentences,
at most ``--max-length`` tokens, and tokenises inside the timed loop:

- plain: the loop most tutorials show: tokenise with dynamic padding, two forward passes
  (one per dropout view), the [CLS] vectors, cross-entropy over the cosine-similarity matrix
  / tau, fused AdamW, bf16 autocast on GPUs that support it;
- package: ``methods.simcse.unsup_loss`` in eager mode (one pass over the doubled batch, the
  package's checked ``simcse_loss``), as ``train_simcse`` runs it;
- fast: ``fast.simcse_step``: batches padded to a fixed length, ``torch.compile``, the whole
  step (forward, backward, fused AdamW) replayed as one CUDA graph; ``compile only`` and
  ``graph only`` switch one half off, to show what each contributes; ``fast efficient``,
  ``fast cudnn``, ``fast flash``, ``fast math`` pin the attention kernel.

Prints ms/step, sentences/s, model-FLOPs utilisation (6 x non-embedding parameters x tokens
of both views per step, over the bf16 matrix-product rate measured at the start of the run)
and the ratio against the plain loop of the same run. ``--check`` first compares the fast
step with the eager one (dropout off: same losses and weights; dropout on: new masks at
every replay). ``--smoke`` runs a tiny model for a few steps on the CPU (the test suite).

    python benchmarks/simcse_speed.py --check          # GPU: BERT-base shape, batch 64
    python benchmarks/simcse_speed.py --batch-size 512 --variants plain,fast
    python benchmarks/simcse_speed.py --smoke          # CPU, seconds
"""

from __future__ import annotations

import argparse
import platform
import time

import torch
import torch.nn.functional as F

ATTENTION = ("efficient", "cudnn", "flash", "math")
VARIANTS = ("plain", "package", "fast", "compile only", "graph only") + tuple(f"fast {a}" for a in ATTENTION)


def build(args):
    from transformers import AutoTokenizer, BertConfig

    from contrastive_tutorial.encoders import resolve_model_id

    # the packaged MiniLM tokenizer is BERT's uncased WordPiece vocabulary, available offline
    tokenizer = AutoTokenizer.from_pretrained(args.tokenizer or resolve_model_id("sentence-transformers/all-MiniLM-L6-v2"))
    if args.smoke:
        config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2,
                            num_attention_heads=2, intermediate_size=64, attn_implementation="sdpa")
    else:
        config = BertConfig(vocab_size=tokenizer.vocab_size, attn_implementation="sdpa")
    return tokenizer, config


def sentences(n: int, path: str | None) -> list[str]:
    if path:
        with open(path, encoding="utf-8") as handle:
            base = [line.strip() for line in handle if line.strip()]
    else:
        from contrastive_tutorial.data import load_unlabelled_sentences

        base = load_unlabelled_sentences("lee_background")["text"]
    return [base[i % len(base)] for i in range(n)]


def autocast(device):
    """The package's precision rule (bf16 from compute capability 8.0, fp16 below; fp32 on CPU)."""
    from contrastive_tutorial.train import precision

    return precision(device).autocast()


def sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_steps(step, batches, device, warmup: int) -> float:
    for batch in batches[:warmup]:
        step(batch)
    sync(device)
    start = time.perf_counter()
    for batch in batches[warmup:]:
        step(batch)
    sync(device)
    return time.perf_counter() - start


def new_model(config, device):
    from transformers import BertModel

    torch.manual_seed(0)
    return BertModel(config).to(device).train()


def plain_loop(tokenizer, config, args, device):
    model = new_model(config, device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-5, fused=device.type == "cuda")

    def step(texts):
        batch = tokenizer(texts, padding=True, truncation=True, max_length=args.max_length, return_tensors="pt").to(device)
        with autocast(device):
            a = model(**batch).last_hidden_state[:, 0]
            b = model(**batch).last_hidden_state[:, 0]
        logits = F.cosine_similarity(a[:, None].float(), b[None].float(), dim=-1) / 0.05
        loss = F.cross_entropy(logits, torch.arange(len(texts), device=device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def package_loop(tokenizer, config, args, device):
    from contrastive_tutorial.encoders import TextEncoder
    from contrastive_tutorial.methods.simcse import unsup_loss
    from contrastive_tutorial.train import adam

    encoder = TextEncoder(new_model(config, device), tokenizer, pooler="cls", max_length=args.max_length).to(device).train()
    optimizer = adam(encoder.parameters(), lr=3e-5)  # the optimiser train_simcse uses

    def step(texts):
        with autocast(device):
            loss = unsup_loss(encoder, texts, 0.05)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def fast_encoder(tokenizer, config, args, device):
    from contrastive_tutorial.encoders import TextEncoder

    return TextEncoder(new_model(config, device), tokenizer, pooler="cls", max_length=args.max_length).to(device).train()


def fast_loop(tokenizer, config, args, device, compile: bool = True, cuda_graph: bool = True,
              attention: str | None = "efficient"):
    from contrastive_tutorial.fast import fast_adamw, fixed_length_batch, simcse_step

    encoder = fast_encoder(tokenizer, config, args, device)
    step_fn = simcse_step(encoder, fast_adamw(encoder.parameters(), 3e-5, device=device), 0.05,
                          compile=compile and not args.smoke, cuda_graph=cuda_graph,
                          attention=attention if device.type == "cuda" else None)
    pin = device.type == "cuda"

    def step(texts):
        batch = fixed_length_batch(tokenizer, texts, args.max_length)
        ids, mask = (t.pin_memory() if pin else t for t in (batch["input_ids"], batch["attention_mask"]))
        step_fn(ids.to(device, non_blocking=True), mask.to(device, non_blocking=True))

    return step


def check_fast(tokenizer, config, args, device) -> None:
    """The fast step trains like the eager one, and its replays draw new dropout masks."""
    from contrastive_tutorial.fast import fast_adamw, fixed_length_batch, simcse_step

    texts = sentences(2 * args.batch_size, args.sentences)
    batches = [fixed_length_batch(tokenizer, texts[i::2], args.max_length) for i in range(2)]
    batches = [(b["input_ids"].to(device), b["attention_mask"].to(device)) for b in batches]
    quiet = config.__class__(**{**config.to_dict(), "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0})
    losses, weights = {}, {}
    for name, fast in (("eager", False), ("fast", True)):
        encoder = fast_encoder(tokenizer, quiet, args, device)
        step = simcse_step(encoder, fast_adamw(encoder.parameters(), 1e-4, device=device), 0.05,
                           compile=fast and not args.smoke, cuda_graph=fast)
        losses[name] = [step(*batches[i % 2]).item() for i in range(4)]
        weights[name] = torch.cat([p.detach().flatten().float() for p in encoder.parameters()])
    drift = ((weights["fast"] - weights["eager"]).norm() / weights["eager"].norm()).item()
    print("check, dropout off: eager losses", [f"{x:.4f}" for x in losses["eager"]],
          "fast", [f"{x:.4f}" for x in losses["fast"]], f"relative weight difference {drift:.2e}")
    encoder = fast_encoder(tokenizer, config, args, device)
    step = simcse_step(encoder, fast_adamw(encoder.parameters(), 0.0, device=device), 0.05,
                       compile=not args.smoke, cuda_graph=True)
    replays = [step(*batches[0]).item() for _ in range(4)]
    print("check, dropout on, lr 0, same batch replayed:", [f"{x:.4f}" for x in replays],
          "(different values: new dropout masks each replay)")


def profile_fast(tokenizer, config, args, device, batches) -> None:
    """The GPU kernels of five fast steps, largest total time first (torch.profiler)."""
    from torch.profiler import ProfilerActivity, profile

    step = fast_loop(tokenizer, config, args, device)
    for batch in batches[:4]:
        step(batch)
    sync(device)
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for batch in batches[4:9]:
            step(batch)
        sync(device)
    print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=25, max_name_column_width=70))


def matmul_rate(device) -> float:
    """bf16 matrix-product rate in FLOP/s (8192^3, median of 10), the ceiling for MFU."""
    if device.type != "cuda":
        return float("nan")
    a, b = (torch.randn(8192, 8192, device=device, dtype=torch.bfloat16) for _ in range(2))
    for _ in range(3):
        a @ b
    times = []
    for _ in range(10):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        a @ b
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / 1000)
    return 2 * 8192**3 / sorted(times)[5]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--max-length", type=int, default=32)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--variants", default=",".join(VARIANTS[:5]), help=f"comma-separated, from {VARIANTS}")
    parser.add_argument("--tokenizer", help="tokenizer folder (default: the packaged all-MiniLM-L6-v2's)")
    parser.add_argument("--sentences", help="text file, one sentence per line (default: lee_background)")
    parser.add_argument("--check", action="store_true", help="compare the fast step with the eager one first")
    parser.add_argument("--profile", action="store_true", help="print the fast step's GPU kernels at the end")
    parser.add_argument("--smoke", action="store_true", help="tiny model, few steps (CPU smoke test)")
    args = parser.parse_args()
    if args.smoke:
        args.steps, args.warmup, args.batch_size = 3, 1, 8
    variants = [v.strip() for v in args.variants.split(",")]
    for v in variants:
        if v not in VARIANTS:
            parser.error(f"unknown variant {v!r}; choose from {VARIANTS}")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    tokenizer, config = build(args)
    data = sentences((args.steps + args.warmup) * args.batch_size, args.sentences)
    batches = [data[i : i + args.batch_size] for i in range(0, len(data), args.batch_size)]
    name = torch.cuda.get_device_name() if device.type == "cuda" else platform.processor() or "cpu"
    import transformers

    rate = matmul_rate(device)
    print(f"device: {name}; torch {torch.__version__}; transformers {transformers.__version__}; "
          f"model: hidden {config.hidden_size}, {config.num_hidden_layers} layers; batch {args.batch_size}; "
          f"max length {args.max_length}; {args.steps} timed steps; bf16 matmul {rate / 1e12:.0f} TFLOP/s")
    if args.check:
        check_fast(tokenizer, config, args, device)
    embedding = config.vocab_size + config.max_position_embeddings + config.type_vocab_size
    dense = sum(p.numel() for p in new_model(config, "cpu").parameters()) - embedding * config.hidden_size
    flops = 6 * dense * 2 * args.batch_size * args.max_length
    loops = {
        "plain": lambda: plain_loop(tokenizer, config, args, device),
        "package": lambda: package_loop(tokenizer, config, args, device),
        "fast": lambda: fast_loop(tokenizer, config, args, device),
        "compile only": lambda: fast_loop(tokenizer, config, args, device, cuda_graph=False),
        "graph only": lambda: fast_loop(tokenizer, config, args, device, compile=False),
    }
    for a in ATTENTION:
        loops[f"fast {a}"] = lambda a=a: fast_loop(tokenizer, config, args, device, attention=a)
    results = {}
    for label in variants:
        try:
            seconds = time_steps(loops[label](), batches, device, args.warmup) / args.steps
        except RuntimeError as error:  # e.g. an attention kernel that does not take a padding mask
            print(f"{label:>13}: failed: {str(error).splitlines()[0][:150]}")
            continue
        results[label] = seconds
        if device.type == "cuda":
            torch.cuda.empty_cache()
        print(f"{label:>13}: {1000 * seconds:8.2f} ms/step  {args.batch_size / seconds:9.0f} sentences/s  "
              f"MFU {flops / seconds / rate:6.1%}", flush=True)
    if "plain" in results:
        for label, seconds in results.items():
            if label != "plain":
                    print(f"ratio plain / {label}: {results['plain'] / seconds:.2f}x faster")
    if args.profile:
        profile_fast(tokenizer, config, args, device, batches)


if __name__ == "__main__":
    main()
