"""Peak memory and time of one unsupervised SimCSE step: plain full batch vs gradient caching.

Both compute the same gradients (tests/test_scale.py checks it): the plain path runs the two
dropout views of the whole batch with a graph; ``scale.cached_backward`` encodes them in
chunks of ``--chunk-size`` without a graph, takes the loss gradient on the full batch, then
backpropagates chunk by chunk. Each path runs in its own process so that its peak memory is
its own: ``torch.cuda.max_memory_allocated`` on a GPU, the process's peak resident set size
(``ru_maxrss``) on a CPU. The model is BERT-base's shape with random weights (``BertConfig()``)
fed random token ids of ``--max-length``; ``--small`` shrinks it for CPUs, ``--smoke`` for tests.

    python benchmarks/grad_cache.py --device cuda --batch-size 1024 --chunk-size 128
    python benchmarks/grad_cache.py --small --batch-size 256 --chunk-size 32
    python benchmarks/grad_cache.py --smoke
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import torch


def build(args):
    from transformers import BertConfig, BertModel

    if args.smoke:
        config = BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
    elif args.small:
        config = BertConfig(hidden_size=256, num_hidden_layers=4, num_attention_heads=4, intermediate_size=1024)
    else:
        config = BertConfig()
    torch.manual_seed(0)
    model = BertModel(config).to(args.device).train()
    ids = torch.randint(1000, config.vocab_size, (args.batch_size, args.max_length), device=args.device)
    return model, {"input_ids": ids, "attention_mask": torch.ones_like(ids)}


def one_path(args) -> dict:
    from contrastive_tutorial.losses import simcse_loss
    from contrastive_tutorial.scale import cached_backward

    model, batch = build(args)

    def encode(b):
        return model(**b).last_hidden_state[:, 0]

    def loss_fn(a, b):
        return simcse_loss(a, b, 0.05)

    def step():
        if args.path == "plain":
            loss_fn(encode(batch), encode(batch)).backward()
        else:
            cached_backward(encode, (batch, batch), loss_fn, args.chunk_size)
        model.zero_grad(set_to_none=True)

    step()  # warm-up
    cuda = args.device.startswith("cuda")
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(args.repeats):
        step()
    if cuda:
        torch.cuda.synchronize()
    seconds = (time.perf_counter() - start) / args.repeats
    peak = torch.cuda.max_memory_allocated() if cuda else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"seconds": seconds, "peak_bytes": peak}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--chunk-size", type=int, default=128)
    parser.add_argument("--max-length", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--small", action="store_true")
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--path", choices=("plain", "cached"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.smoke:
        args.batch_size, args.chunk_size, args.max_length, args.repeats = 16, 4, 8, 1
    if args.path:  # child process: measure one path and report as JSON
        print(json.dumps(one_path(args)))
        return
    results = {}
    for path in ("plain", "cached"):
        cmd = [sys.executable, __file__, "--path", path] + [a for a in sys.argv[1:]]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True)
        results[path] = json.loads(out.stdout.strip().splitlines()[-1])
    plain, cached = results["plain"], results["cached"]
    where = "GPU allocated" if args.device.startswith("cuda") else "process RSS"
    print(f"device {args.device}, torch {torch.__version__}, batch {args.batch_size}, chunk {args.chunk_size}, "
          f"max length {args.max_length}, model {'smoke' if args.smoke else 'small' if args.small else 'BERT-base shape'}")
    for name, r in results.items():
        print(f"{name:>6}: {r['seconds'] * 1000:8.1f} ms/step, peak {where} {r['peak_bytes'] / 2**20:8.1f} MiB")
    print(f"ratio cached / plain: time {cached['seconds'] / plain['seconds']:.2f}x, "
          f"peak memory {cached['peak_bytes'] / plain['peak_bytes']:.2f}x")


if __name__ == "__main__":
    main()
