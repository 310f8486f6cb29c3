"""Every trainer's mixed-precision path on a GPU: bfloat16 (compute capability 8.0 and newer) and
the T4's float16 with its gradient scaler.

    python benchmarks/gpu_precision.py [--json out.json] [--device cpu]

Smoke mode trains in float32 on a CPU (emulated bfloat16 is far slower there:
``contrastive_tutorial.smoke``), and ``tests/test_train.py`` runs each trainer under bfloat16
autocast on the CPU with a tiny BERT. This runs the same trainers (the test's own helper) on CUDA
with the book's raw encoder (RoFormer, 5.3 M parameters, shipped in the package), under
``amp=None`` (what the device's rule picks) and ``amp="fp16"`` (Colab's T4), and prints for each
the autocast type every step used, whether every loss was finite, and the seconds it took.
It needs no network and neither ``datasets`` nor ``kornia`` (a GPU machine may lack both).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]


@contextlib.contextmanager
def default_amp(amp: str | None):
    """Within the block ``amp=None`` means ``amp``; yields the list of autocast types the steps used."""
    import contrastive_tutorial.train as T

    used, real_precision, real_autocast = [], T.precision, T.Precision.autocast

    def autocast(self):
        used.append(self.name)
        return real_autocast(self)

    T.Precision.autocast = autocast
    T.precision = lambda device, value=None: real_precision(device, amp if value is None else value)
    try:
        yield used
    finally:
        T.Precision.autocast, T.precision = real_autocast, real_precision


def main(argv: list[str] | None = None) -> int:
    import torch
    from transformers import AutoModel, AutoTokenizer

    from contrastive_tutorial.encoders import RAW_MODEL, resolve_model_id
    from test_train import BF16_TRAINERS, _train_under_default_amp

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="also write the rows here")
    parser.add_argument("--device", default="cuda", help="cuda (default), or cpu to check the script itself")
    args = parser.parse_args(argv)
    cuda = args.device == "cuda"
    if cuda and not torch.cuda.is_available():
        print("gpu_precision: no CUDA device; nothing to measure")
        return 0
    name = (f"{torch.cuda.get_device_name()} (compute capability {'.'.join(map(str, torch.cuda.get_device_capability()))})"
            if cuda else "CPU")
    print(f"{name}, torch {torch.__version__}")
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    path = resolve_model_id(RAW_MODEL)
    tokenizer, model = AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path)
    rows = []
    for amp in (None, "fp16"):
        for trainer in BF16_TRAINERS:
            with default_amp(amp) as used:
                sync()
                start = time.perf_counter()
                try:
                    losses, error = _train_under_default_amp(trainer, tokenizer, model, device=args.device), None
                except Exception as caught:  # noqa: BLE001 (reported in the row)
                    losses, error = [], f"{type(caught).__name__}: {caught}"
                sync()
            rows.append({"trainer": trainer, "amp": amp or "default", "autocast": sorted(set(used)),
                         "steps": len(used), "finite": bool(losses) and all(map(math.isfinite, losses)),
                         "seconds": round(time.perf_counter() - start, 2), "error": error})
            row = rows[-1]
            print(f"{trainer:10s} amp={row['amp']:7s} autocast={','.join(row['autocast']) or '-':5s} "
                  f"steps={row['steps']} finite={row['finite']} {row['seconds']:6.2f} s {error or ''}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")
    return 0 if all(r["finite"] and not r["error"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
