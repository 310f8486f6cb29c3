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
    del loss, z1, z2  # the autograd graph holds the all-gathers' work objects; free it before teardown
    # Both ranks wait here before tearing down: a rank that destroys its gloo group while its
    # peer is still communicating makes the peer abort ("terminate called without an active exception").
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
    # Skip interpreter finalisation: with torch 2.13, gloo's worker threads can still release
    # tensors while Python shuts down, which aborts the process now and then after correct work.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
