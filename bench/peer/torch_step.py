#!/usr/bin/env python3
"""PyTorch's side of the peer benchmark (bench/peer/peer_bench.py runs it; one configuration
per launch, under mpirun like ZeroShard's side, bench/peer_step.cpp).

Model, data and optimizer mirror zs_peer_step exactly: `layers` x (Linear(width, width) + ReLU),
MSE against a fixed target, batch `batch` per rank, AdamW (lr 1e-3, betas 0.9/0.999, eps 1e-8,
weight decay 0.01). Strategies: `single` (one process, no torch.distributed), `ddp`
(DistributedDataParallel, gloo) and `zero` (DDP + ZeroRedundancyOptimizer: optimizer states
sharded as ZeRO-1; FSDP does not run on CPU in torch 1.13).

Prints one JSON line (rank 0) with per-step times of the slowest rank, forward+backward and
optimizer medians, RSS high-water above the process floor (after `import torch` and the process
group, before the model) and page faults per timed step, maxima over ranks.
"""
import argparse
import json
import os
import resource
import time


def rusage():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_maxrss / 1024.0, r.ru_minflt + r.ru_majflt  # MiB (Linux reports KiB), faults


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--strategy", choices=["single", "ddp", "zero"], required=True)
    p.add_argument("--layers", type=int, default=8)
    p.add_argument("--width", type=int, default=2048)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, required=True)
    p.add_argument("--init-file", help="file:// rendezvous for torch.distributed (ddp, zero)")
    a = p.parse_args()

    import torch
    import torch.distributed as dist
    import torch.nn.functional as F

    torch.set_num_threads(a.threads)
    rank = int(os.environ.get("OMPI_COMM_WORLD_RANK", "0"))
    world = int(os.environ.get("OMPI_COMM_WORLD_SIZE", "1"))
    distributed = a.strategy != "single"
    if distributed:
        dist.init_process_group("gloo", init_method="file://" + a.init_file, rank=rank, world_size=world)
    elif world != 1:
        raise SystemExit("torch_step.py: --strategy single runs as one process, not %d" % world)
    floor_mib, _ = rusage()

    torch.manual_seed(1234)
    layers = []
    for _ in range(a.layers):
        layers += [torch.nn.Linear(a.width, a.width), torch.nn.ReLU()]
    model = torch.nn.Sequential(*layers)
    if distributed:
        model = torch.nn.parallel.DistributedDataParallel(model)
    adamw = dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
    if a.strategy == "zero":
        from torch.distributed.optim import ZeroRedundancyOptimizer
        optimizer = ZeroRedundancyOptimizer(model.parameters(), optimizer_class=torch.optim.AdamW, **adamw)
    else:
        optimizer = torch.optim.AdamW(model.parameters(), **adamw)
    construction_mib, _ = rusage()

    # The same input and target as zs_peer_step (a deterministic pattern, per rank).
    n = a.batch * a.width
    idx = torch.arange(n, dtype=torch.int64)
    x = (((idx * 7919 + rank * 13) % 1000).float() / 1000.0 - 0.5).reshape(a.batch, a.width)
    y = (((idx * 104729 + rank * 17) % 1000).float() / 1000.0 - 0.5).reshape(a.batch, a.width)

    steps, fwd_bwd, opt = [], [], []
    faults_start = 0
    for s in range(a.warmup + a.steps):
        if s == a.warmup:
            _, faults_start = rusage()
        if distributed:
            dist.barrier()
        t0 = time.perf_counter()
        optimizer.zero_grad(set_to_none=False)
        loss = F.mse_loss(model(x), y)
        loss.backward()
        t1 = time.perf_counter()
        optimizer.step()
        t2 = time.perf_counter()
        times = torch.tensor([t1 - t0, t2 - t1, t2 - t0], dtype=torch.float64)
        if distributed:
            dist.all_reduce(times, op=dist.ReduceOp.MAX)
        if s >= a.warmup:
            fwd_bwd.append(times[0].item())
            opt.append(times[1].item())
            steps.append(times[2].item())
    peak_mib, faults_end = rusage()
    mine = torch.tensor([peak_mib - floor_mib, construction_mib - floor_mib, (faults_end - faults_start) / a.steps,
                         floor_mib], dtype=torch.float64)
    if distributed:
        dist.all_reduce(mine, op=dist.ReduceOp.MAX)
    if rank == 0:
        median = lambda v: sorted(v)[len(v) // 2]
        print(json.dumps({
            "runtime": "pytorch", "strategy": a.strategy, "ranks": world, "threads": a.threads,
            "layers": a.layers, "width": a.width, "batch": a.batch, "loss": loss.item(),
            "step_ms": [1e3 * t for t in steps], "fwd_bwd_ms": 1e3 * median(fwd_bwd), "optimizer_ms": 1e3 * median(opt),
            "peak_above_floor_mib": mine[0].item(), "construction_above_floor_mib": mine[1].item(),
            "faults_per_step": mine[2].item(), "floor_mib": mine[3].item(),
            "build": "torch %s, %s" % (torch.__version__, blas_kernel()),
        }), flush=True)
    if distributed:
        # Every rank past its last collective before any tears down: a rank whose peer already
        # destroyed the group aborted in teardown now and then ("terminate called without an
        # active exception", exit 134, after its result was printed).
        dist.barrier()
        dist.destroy_process_group()


def blas_kernel():
    """Which BLAS torch's GEMMs ran on: OpenBLAS's core name when libblas.so.3 is OpenBLAS."""
    import ctypes
    try:
        lib = ctypes.CDLL("libblas.so.3")
        lib.openblas_get_corename.restype = ctypes.c_char_p
        return "OpenBLAS " + lib.openblas_get_corename().decode()
    except (OSError, AttributeError):
        return "reference BLAS (libblas3)"


if __name__ == "__main__":
    main()
