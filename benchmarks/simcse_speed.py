"""Training speed of unsupervised SimCSE: the package's step against a plain Hugging Face loop.

Both train the same model (BERT-base's shape with random weights by default, built from
``BertConfig()``; speed does not depend on the weights) on the same batches of real
sentences, tokenised to at most ``--max-length`` tokens:

- plain: two forward passes (one per dropout view), the [CLS] vectors, cross-entropy over the
  cosine-similarity matrix / tau, ``torch.optim.AdamW`` with its defaults;
- package: ``methods.simcse.unsup_loss`` (one forward pass over the doubled batch, the
  package's checked ``simcse_loss``), AdamW (fused on CUDA), bf16 autocast where the GPU
  supports it, as ``train_simcse`` runs it.

Prints sentences per second for each and the ratio package / plain, measured in the same run.
``--smoke`` runs a tiny model for a few steps (what the test suite does on CPU).

    python benchmarks/simcse_speed.py                 # GPU: BERT-base shape, batch 64
    python benchmarks/simcse_speed.py --batch-size 512
    python benchmarks/simcse_speed.py --smoke         # CPU, seconds
"""

from __future__ import annotations

import argparse
import contextlib
import platform
import time

import torch
import torch.nn.functional as F


def build(args):
    from transformers import AutoTokenizer, BertConfig, BertModel

    from contrastive_tutorial.encoders import resolve_model_id

    # the packaged MiniLM tokenizer is BERT's uncased WordPiece vocabulary, available offline
    tokenizer = AutoTokenizer.from_pretrained(resolve_model_id("sentence-transformers/all-MiniLM-L6-v2"))
    if args.smoke:
        config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2,
                            num_attention_heads=2, intermediate_size=64)
    else:
        config = BertConfig(vocab_size=tokenizer.vocab_size)
    return tokenizer, config


def sentences(n: int) -> list[str]:
    from contrastive_tutorial.data import load_unlabelled_sentences

    base = load_unlabelled_sentences("lee_background")["text"]
    return [base[i % len(base)] for i in range(n)]


def autocast(device):
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def time_steps(step, batches, device, warmup: int) -> float:
    for batch in batches[:warmup]:
        step(batch)
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for batch in batches[warmup:]:
        step(batch)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def plain_loop(tokenizer, config, batches, args, device) -> float:
    from transformers import BertModel

    torch.manual_seed(0)
    model = BertModel(config).to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-5)

    def step(texts):
        batch = tokenizer(texts, padding=True, truncation=True, max_length=args.max_length, return_tensors="pt").to(device)
        a = model(**batch).last_hidden_state[:, 0]
        b = model(**batch).last_hidden_state[:, 0]
        logits = F.cosine_similarity(a[:, None], b[None], dim=-1) / 0.05
        loss = F.cross_entropy(logits, torch.arange(len(texts), device=device))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return time_steps(step, batches, device, args.warmup)


def package_loop(tokenizer, config, batches, args, device) -> float:
    from transformers import BertModel

    from contrastive_tutorial.encoders import TextEncoder
    from contrastive_tutorial.methods.simcse import unsup_loss

    torch.manual_seed(0)
    encoder = TextEncoder(BertModel(config), tokenizer, pooler="cls", max_length=args.max_length).to(device).train()
    optimizer = torch.optim.AdamW(encoder.parameters(), lr=3e-5, fused=device.type == "cuda")

    def step(texts):
        with autocast(device):
            loss = unsup_loss(encoder, texts, 0.05)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return time_steps(step, batches, device, args.warmup)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--max-length", type=int, default=32)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--smoke", action="store_true", help="tiny model, few steps (CPU smoke test)")
    args = parser.parse_args()
    if args.smoke:
        args.steps, args.warmup, args.batch_size = 3, 1, 8
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    tokenizer, config = build(args)
    data = sentences((args.steps + args.warmup) * args.batch_size)
    batches = [data[i : i + args.batch_size] for i in range(0, len(data), args.batch_size)]
    name = torch.cuda.get_device_name() if device.type == "cuda" else platform.processor() or "cpu"
    print(f"device: {name}; torch {torch.__version__}; model: hidden {config.hidden_size}, "
          f"{config.num_hidden_layers} layers; batch {args.batch_size}; max length {args.max_length}; "
          f"{args.steps} timed steps")
    results = {}
    for label, run in [("plain HF loop", plain_loop), ("package", package_loop)]:
        seconds = run(tokenizer, config, batches, args, device)
        results[label] = args.steps * args.batch_size / seconds
        print(f"{label:>14}: {1000 * seconds / args.steps:8.1f} ms/step  {results[label]:9.0f} sentences/s")
    print(f"ratio package / plain: {results['package'] / results['plain HF loop']:.2f}x")


if __name__ == "__main__":
    main()
