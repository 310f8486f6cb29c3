"""Run by tests/test_scale.py under ``torchrun --nproc_per_node 2``: NT-Xent on the global batch
with negatives gathered across processes; parameter gradients averaged as DDP does. Rank 0
saves the loss and gradients to the file given as the first argument."""

import os
import sys

import torch
import torch.distributed as dist
from torch import nn

from contrastive_tutorial.losses import nt_xent
from contrastive_tutorial.scale import gather_with_grad


def main(out_path: str) -> None:
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 5)).double()
    x1, x2 = torch.randn(8, 6, dtype=torch.float64), torch.randn(8, 6, dtype=torch.float64)
    mine = slice(rank * 8 // world, (rank + 1) * 8 // world)
    z1, z2 = gather_with_grad(model(x1[mine])), gather_with_grad(model(x2[mine]))
    loss = nt_xent(z1, z2, 0.2)
    loss.backward()
    for p in model.parameters():  # what DDP does: average the gradients over processes
        dist.all_reduce(p.grad)
        p.grad /= world
    if rank == 0:
        torch.save({"loss": loss.detach(), "grads": [p.grad for p in model.parameters()], "rows": len(z1)}, out_path)
    # Teardown with torch 2.13's gloo aborted about one run in 40 ("terminate called without an
    # active exception"). Freeing the autograd graph (it holds the all-gathers' work), a barrier so
    # that neither rank leaves first, and skipping interpreter finalisation (below) together stopped
    # it (0 in 40 runs); the barrier alone did not.
    del loss, z1, z2
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
    # Skip interpreter finalisation, where gloo's threads may still release tensors.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
