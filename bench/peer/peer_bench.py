#!/usr/bin/env python3
"""ZeroShard next to PyTorch on the same model, batch, optimizer and loss, in one run.

    bash bench/peer/setup.sh                 # once: python3-torch and OpenBLAS (the peer's BLAS)
    /usr/bin/python3 bench/peer/peer_bench.py [--ranks 1 2 4] [--reps 3] [--widths 1024 2048 4096]

Model: `layers` x (Linear(width, width) + ReLU), MSE, batch per rank, AdamW (torch_step.py and
../peer_step.cpp are the two sides). Strategies side by side: ZeroShard stages 0-3; PyTorch
single-process (1 rank), DistributedDataParallel (stage 0's peer) and DDP +
ZeroRedundancyOptimizer (the peer of stages 1-3: FSDP does not run on CPU in torch 1.13).
Opt-in rows next to the defaults: "node-shared" (zero_optimization.node_shared_parameters, at
2+ ranks) and "in backward" (optimizer.in_backward: each unit updated during backward, so its
optimizer column is ~0 and the update's time is inside forward+backward).
Both get the same compute threads per rank (the cores divided by the ranks) and run under the
same mpirun (scripts/zs-mpirun). Configurations are interleaved within each repetition so
machine noise hits all alike; tables give medians over repetitions (each repetition's own
value is the median of its timed steps) with min-max, and ratios ZeroShard / PyTorch.

PyTorch gets its best setup on this machine (../../docs/performance.md): OpenBLAS through
LD_LIBRARY_PATH (Debian's default libblas.so.3 is the reference BLAS), and glibc malloc tuned so
that freed tensors (16 MiB at width 2048, 64 MiB at 4096) are not returned to the OS and faulted
in again every step. Both runtimes get the same OpenBLAS kernels: OpenBLAS's own choice for
the CPU, or --openblas-coretype (OpenBLAS 0.3.21 misdetects some CPUs); OPENBLAS_CORETYPE /
OPENBLAS_L2_SIZE that the environment sets for safety (one that pins AVX2 kernels on an AVX-512
CPU) are removed from both commands. The BLAS kernel that ran is printed.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OPENBLAS_DIR = "/usr/lib/x86_64-linux-gnu/openblas-pthread"
# glibc caps mmap_threshold at 32 MiB, so larger tensors (width 4096: 64 MiB) would still be
# mapped and faulted in anew at every allocation (PyTorch's steps 5x longer); mmap_max=0 serves
# every allocation from the heap, which the trim threshold keeps.
TUNED_MALLOC = "glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=17179869184:glibc.malloc.mmap_max=0"


def launch(ranks, command, env_changes, drop=()):
    env = dict(os.environ)
    for name in drop:
        env.pop(name, None)
    env.update(env_changes)
    out = subprocess.run([os.path.join(ROOT, "scripts/zs-mpirun"), "-np", str(ranks)] + command, env=env,
                         capture_output=True, text=True, timeout=900)
    lines = [l for l in out.stdout.splitlines() if l.startswith("{")]
    if out.returncode != 0 or not lines:
        sys.exit("peer_bench: %s failed (exit %d):\n%s\n%s" % (" ".join(command), out.returncode, out.stdout[-2000:],
                                                                out.stderr[-4000:]))
    return json.loads(lines[-1])


def blas_environment(args):
    """(changes, names to drop): the same OpenBLAS setup for both runtimes. OpenBLAS picks its kernels
    for the CPU unless --openblas-coretype is given; OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE that the
    environment sets (some hold OpenBLAS to AVX2 kernels for safety) are dropped for both sides."""
    changes = {"OPENBLAS_CORETYPE": args.openblas_coretype} if args.openblas_coretype else {}
    return changes, [n for n in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if n not in changes]


def zeroshard(args, ranks, stage, width, threads, build=None, node_shared=False, in_backward=False):
    exe = os.path.join(build or args.build, "bench/zs_peer_step")
    command = [exe, "--stage", str(stage), "--layers", str(args.layers), "--width", str(width), "--batch",
               str(args.batch), "--steps", str(args.steps), "--threads", str(threads),
               "--node-shared", "1" if node_shared else "0"]
    if in_backward:  # optimizer.in_backward; older builds (--baseline-build) lack the option
        command += ["--in-backward", "1"]
    return launch(ranks, command, *blas_environment(args))


def pytorch(args, ranks, strategy, width, threads):
    with tempfile.TemporaryDirectory() as tmp:
        env = {"GLIBC_TUNABLES": TUNED_MALLOC, "OPENBLAS_NUM_THREADS": str(threads), "OMP_NUM_THREADS": str(threads)}
        if os.path.isdir(OPENBLAS_DIR):
            env["LD_LIBRARY_PATH"] = OPENBLAS_DIR
        blas_changes, drop = blas_environment(args)
        env.update(blas_changes)
        return launch(ranks, [args.torch_python, os.path.join(ROOT, "bench/peer/torch_step.py"), "--strategy", strategy,
                              "--layers", str(args.layers), "--width", str(width), "--batch", str(args.batch),
                              "--steps", str(args.steps), "--threads", str(threads), "--init-file",
                              os.path.join(tmp, "rendezvous")], env, drop)


def configurations(ranks, baseline=False, baseline_label="baseline build"):
    """(label, runtime, strategy, peer label) in the order run within a repetition."""
    peer0 = "torch single" if ranks == 1 else "torch DDP"
    peer123 = "torch single" if ranks == 1 else "torch ZeRO-1"
    rows = [("ZeroShard stage %d" % s, "zs", s, peer0 if s == 0 else peer123) for s in range(4)]
    if ranks > 1:  # zero_optimization.node_shared_parameters (stages 1-3; nothing to share at one rank)
        rows += [("ZeroShard stage %d, node-shared" % s, "zs-shared", s, peer123) for s in range(1, 4)]
    # optimizer.in_backward: each unit updated during backward, its gradients freed after.
    rows += [("ZeroShard stage %d, in backward" % s, "zs-in-backward", s, peer0 if s == 0 else peer123)
             for s in range(4)]
    if baseline:  # the same code built for the x86-64 baseline with Eigen's GEMMs
        rows += [("ZeroShard stage %d, %s" % (s, baseline_label), "zs-baseline", s, peer0 if s == 0 else peer123)
                 for s in range(4)]
    if ranks == 1:
        rows.append(("torch single", "torch", "single", None))
    else:
        rows += [("torch DDP", "torch", "ddp", None), ("torch ZeRO-1", "torch", "zero", None)]
    return rows


def run(args, ranks, width, label, runtime, strategy):
    threads = max(1, (os.cpu_count() or 1) // ranks)
    if runtime == "zs":
        result = zeroshard(args, ranks, strategy, width, threads)
    elif runtime == "zs-shared":
        result = zeroshard(args, ranks, strategy, width, threads, node_shared=True)
    elif runtime == "zs-in-backward":
        result = zeroshard(args, ranks, strategy, width, threads, in_backward=True)
    elif runtime == "zs-baseline":
        result = zeroshard(args, ranks, strategy, width, threads, args.baseline_build)
    else:
        result = pytorch(args, ranks, strategy, width, threads)
    result["label"] = label
    if args.raw:
        with open(args.raw, "a") as f:
            f.write(json.dumps(result) + "\n")
    print("  %-18s ranks %d width %d: step %.1f ms" % (label, ranks, width, statistics.median(result["step_ms"])),
          file=sys.stderr, flush=True)
    return result


def spread(values, fmt="%.1f"):
    return (fmt + " (" + fmt + "-" + fmt + ")") % (statistics.median(values), min(values), max(values))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ranks", type=int, nargs="*", default=[1, 2, 4],
                   help="world sizes of the main table; none: only the width table")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--layers", type=int, default=8)
    p.add_argument("--width", type=int, default=2048)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--widths", type=int, nargs="*", default=[1024, 2048, 4096],
                   help="the scaling table's widths (2 ranks, stages 0 and 3 (also node-shared) and their peers); none: skip it")
    p.add_argument("--openblas-coretype", help="OPENBLAS_CORETYPE for both runtimes (e.g. SkylakeX where 0.3.21 misdetects)")
    p.add_argument("--build", default=os.path.join(ROOT, "build"))
    p.add_argument("--torch-python", default="/usr/bin/python3",
                   help="the Python that runs the PyTorch peer (a virtual environment's, where torch is not Debian's)")
    p.add_argument("--raw", help="append every run's JSON line to this file")
    p.add_argument("--baseline-build", help="another build tree whose stages run too, at 2 ranks: one configured with "
                   "-DZS_SIMD=BASELINE -DZS_BLAS=Eigen shows how much the build options give; one of an older "
                   "commit compares two versions of the code (--baseline-label names its rows)")
    p.add_argument("--baseline-label", default="baseline build", help="what the --baseline-build rows are called")
    args = p.parse_args()

    results = {}  # (ranks, width, label) -> [result per repetition]
    for rep in range(args.reps):
        print("repetition %d of %d" % (rep + 1, args.reps), file=sys.stderr, flush=True)
        for ranks in args.ranks:
            for label, runtime, strategy, _ in configurations(ranks, args.baseline_build and ranks == 2, args.baseline_label):
                results.setdefault((ranks, args.width, label), []).append(
                    run(args, ranks, args.width, label, runtime, strategy))
        for width in args.widths:
            if width == args.width and 2 in args.ranks:
                continue  # the main table has it
            for label, runtime, strategy, _ in configurations(2):
                if label in ("ZeroShard stage 0", "ZeroShard stage 3", "ZeroShard stage 3, node-shared", "torch DDP",
                             "torch ZeRO-1"):
                    results.setdefault((2, width, label), []).append(run(args, 2, width, label, runtime, strategy))

    def reps(ranks, width, label, key):
        return [r[key] if key != "step" else statistics.median(r["step_ms"]) for r in results[(ranks, width, label)]]

    zs_builds = sorted({r[0]["build"] for r in results.values() if r[0]["runtime"] == "zeroshard"})
    torch_build = next(r[0]["build"] for k, r in results.items() if r[0]["runtime"] == "pytorch")
    print("## ZeroShard vs PyTorch: %d x Linear(%d, %d) + ReLU, MSE, batch %d per rank, fp32 AdamW" %
          (args.layers, args.width, args.width, args.batch))
    print()
    print("ZeroShard: %s. PyTorch: %s, glibc malloc tuned (%s). %d repetitions, %d timed steps each "
          "(after 2 warm-up); compute threads per rank = %d cores / ranks. Values: median over repetitions "
          "(min-max); ratio = ZeroShard / PyTorch's closest strategy (lower is better)." %
          (" / ".join(zs_builds), torch_build, TUNED_MALLOC, args.reps, args.steps, os.cpu_count() or 1))
    print()
    if args.ranks:
        print_main_table(args, results, reps)
    if args.widths:
        print_width_table(args, results, reps)


def print_main_table(args, results, reps):
    print("| ranks | runtime | step (ms) | ratio | forward+backward (ms) | optimizer (ms) | optimizer (ns/element) "
          "| opt. ratio | peak RSS above floor (MiB) | RSS ratio | after construction (MiB) | page faults / step |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    params = args.layers * (args.width * args.width + args.width)
    for ranks in args.ranks:
        for label, runtime, strategy, peer in configurations(ranks, args.baseline_build and ranks == 2, args.baseline_label):
            step = reps(ranks, args.width, label, "step")
            # Elements this rank updates: all of them, except where optimizer states are sharded.
            sharded = (runtime.startswith("zs") and strategy >= 1 and ranks > 1) or strategy == "zero"
            elements = params / ranks if sharded else params
            opt = reps(ranks, args.width, label, "optimizer_ms")
            per_element = [1e6 * o / elements for o in opt]
            rss = reps(ranks, args.width, label, "peak_above_floor_mib")
            ratio = opt_ratio = rss_ratio = "-"
            if peer:
                peer_sharded = peer == "torch ZeRO-1"
                peer_elements = params / ranks if peer_sharded else params
                ratio = "%.2fx" % (statistics.median(step) / statistics.median(reps(ranks, args.width, peer, "step")))
                opt_ratio = "%.2fx" % (statistics.median(per_element) / statistics.median(
                    [1e6 * o / peer_elements for o in reps(ranks, args.width, peer, "optimizer_ms")]))
                rss_ratio = "%.2fx" % (statistics.median(rss) /
                                       statistics.median(reps(ranks, args.width, peer, "peak_above_floor_mib")))
            print("| %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                ranks, label, spread(step), ratio, spread(reps(ranks, args.width, label, "fwd_bwd_ms")), spread(opt),
                spread(per_element, "%.2f"), opt_ratio, spread(rss, "%.0f"), rss_ratio,
                spread(reps(ranks, args.width, label, "construction_above_floor_mib"), "%.0f"),
                spread(reps(ranks, args.width, label, "faults_per_step"), "%.0f")))


def print_width_table(args, results, reps):
    print()
    print("## Cost against width: 2 ranks, %d layers, batch %d per rank" % (args.layers, args.batch))
    print()
    print("| width | parameters (M) | runtime | step (ms) | ms per GFLOP of model work | peak RSS above floor (MiB) |")
    print("|---:|---:|---|---:|---:|---:|")
    for width in args.widths:
        for label in ("ZeroShard stage 0", "torch DDP", "ZeroShard stage 3", "ZeroShard stage 3, node-shared", "torch ZeRO-1"):
            if (2, width, label) not in results:
                continue
            step = reps(2, width, label, "step")
            flops = 6.0 * args.layers * width * width * args.batch  # forward + backward, per rank
            print("| %d | %.1f | %s | %s | %.2f | %s |" % (
                width, args.layers * (width * width + width) / 1e6, label, spread(step),
                statistics.median(step) / (flops / 1e9), spread(reps(2, width, label, "peak_above_floor_mib"), "%.0f")))


if __name__ == "__main__":
    main()
