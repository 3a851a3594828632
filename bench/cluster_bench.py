#!/usr/bin/python3
"""Training steps across a link: zs_step_bench on an emulated cluster (scripts/zs-cluster), the
whole stage x overlap matrix, repeated and interleaved, one table of medians and spreads.

Each repeat runs zs_step_bench once per row set (flat sharding, plus any --rows given), row sets
alternating, so machine noise falls on all alike. One run of zs_step_bench covers stages 0-3
with overlap on and off, each with its compute-only and comm-only columns and, with
--link-interface eth0, the bytes the nodes sent over their links per step (headers included:
the tx counters of each node's veth). The table gives, per row set, stage and overlap, the
median over repeats and the min-max; "overlap gain" is step(off) / step(on) - 1, paired within
each repeat (on and off ran in the same process, minutes apart at most).

Usage (as root; nice -n -10 keeps other work on the machine from taking the cores):
  nice -n -10 /usr/bin/python3 bench/cluster_bench.py [--build build] [--nodes 2]
      [--ranks-per-node 2] [--rate 2gbit] [--burst 256kb] [--reps 3] [--steps 3]
      [--rows NAME=KEY=VALUE[,KEY=VALUE...]]... [--collectives] [-- zs_step_bench options]
e.g. --rows hybrid=zero_optimization.shard_group_size=2 adds hybrid-sharding rows next to flat.
"""
import argparse
import os
import re
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLUSTER = os.path.join(ROOT, "scripts", "zs-cluster")
NAME = "bench"


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--build", default=os.path.join(ROOT, "build"))
    p.add_argument("--nodes", type=int, default=2)
    p.add_argument("--ranks-per-node", type=int, default=2)
    p.add_argument("--rate", default="2gbit", help="tc tbf rate of every link, each way (default 2gbit)")
    p.add_argument("--burst", default="256kb", help="tc tbf burst (default 256kb = 256 KiB)")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--steps", type=int, default=3, help="timed steps per configuration and run")
    p.add_argument("--rows", action="append", default=[], metavar="NAME=KEY=VALUE[,KEY=VALUE...]",
                   help="an extra row set: configuration overrides given to zs_step_bench as --KEY=VALUE")
    p.add_argument("--collectives", action="store_true", help="also run zs_collective_bench across the link")
    p.add_argument("bench_args", nargs="*", help="passed to zs_step_bench (after --)")
    return p.parse_args()


def row_sets(args):
    sets = [("flat", [])]
    for spec in args.rows:
        name, _, overrides = spec.partition("=")
        if not name or not overrides:
            sys.exit(f"cluster_bench: --rows '{spec}': give NAME=KEY=VALUE[,KEY=VALUE...]")
        sets.append((name, ["--" + kv for kv in overrides.split(",")]))
    return sets


def on_cluster(args, command):
    """Runs `command` across the cluster, ranks-per-node ranks on each node; returns stdout."""
    ranks = args.nodes * args.ranks_per_node
    full = [CLUSTER, "--name", NAME, "run", "--slots", str(args.ranks_per_node), "-np", str(ranks),
            "--map-by", f"ppr:{args.ranks_per_node}:node"] + command
    done = subprocess.run(full, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace")
    if done.returncode != 0:
        sys.exit(f"cluster_bench: {' '.join(full)} failed ({done.returncode}):\n{done.stdout[-3000:]}")
    return done.stdout


def parse_step_table(text):
    """The rows of zs_step_bench's main table as dicts keyed by its header cells."""
    lines = text.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("| stage | overlap |"))
    keys = [c.strip() for c in lines[header].strip("|").split("|")]
    rows = []
    for line in lines[header + 2:]:
        if not line.startswith("|"):
            break
        rows.append(dict(zip(keys, [c.strip() for c in line.strip("|").split("|")])))
    alone = re.search(r"world of one, same batch: forward \+ backward ([\d.]+) ms, optimizer step ([\d.]+) ms", text)
    return rows, (float(alone.group(1)), float(alone.group(2)))


def number(cell):
    return float(cell.rstrip("%x"))


def spread(values, digits=1):
    med = statistics.median(values)
    if len(values) == 1:
        return f"{med:.{digits}f}"
    dash = " to " if min(values) < 0 else "-"  # "(-9 to 5)", not "(-9-5)"
    return f"{med:.{digits}f} ({min(values):.{digits}f}{dash}{max(values):.{digits}f})"


def main():
    args = parse_args()
    sets = row_sets(args)
    step_bench = os.path.join(args.build, "bench", "zs_step_bench")
    subprocess.run([CLUSTER, "--name", NAME, "up", "--nodes", str(args.nodes), "--rate", args.rate, "--burst", args.burst],
                   check=True, stdout=subprocess.DEVNULL)
    try:
        status = subprocess.run([CLUSTER, "--name", NAME, "status"], stdout=subprocess.PIPE, text=True).stdout.splitlines()[0]
        print(f"{status}\n{args.nodes} nodes x {args.ranks_per_node} ranks, {args.reps} repeats interleaved, "
              f"{args.steps} timed steps per configuration; zs_step_bench {' '.join(args.bench_args)}\n", flush=True)
        results = {}  # (set, stage, overlap) -> {column: [values over repeats]}
        alone = []
        for rep in range(args.reps):
            for name, overrides in sets:
                out = on_cluster(args, [step_bench, "--steps", str(args.steps), "--link-interface", "eth0"]
                                 + args.bench_args + overrides)
                if rep == 0 and name == "flat":
                    print("\n".join(line for line in out.splitlines()[:6] if line.strip()), "\n", flush=True)
                rows, one = parse_step_table(out)
                alone.append(one)
                for row in rows:
                    cell = results.setdefault((name, row["stage"], row["overlap"]), {})
                    for key, value in row.items():
                        if key not in ("stage", "overlap"):
                            cell.setdefault(key, []).append(number(value))
                print(f"repeat {rep + 1}/{args.reps}, {name}: done", file=sys.stderr, flush=True)
        print(f"world of one (per rank, all ranks at once): forward + backward {spread([a[0] for a in alone])} ms, "
              f"optimizer step {spread([a[1] for a in alone])} ms\n")
        print("| sharding | stage | overlap | step (ms) | compute only (ms) | comm only (ms) | link bytes per step (MiB) "
              "| overlap gain | peak full params (MiB) | model state (MiB) |")
        print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")
        for (name, stage, overlap), cell in results.items():
            gain = "-"
            if overlap == "on" and (name, stage, "off") in results:
                off = results[(name, stage, "off")]["step (ms)"]
                gain = spread([100.0 * (f / o - 1.0) for f, o in zip(off, cell["step (ms)"])], 0) + " %"
            print(f"| {name} | {stage} | {overlap} | {spread(cell['step (ms)'])} | {spread(cell['compute only (ms)'])} "
                  f"| {spread(cell['comm only (ms)'])} | {spread(cell['link bytes per step (MiB)'])} | {gain} "
                  f"| {statistics.median(cell['peak full params (MiB)']):.1f} | {statistics.median(cell['model state (MiB)']):.1f} |")
        if args.collectives:
            print("\nzs_collective_bench across the link:\n")
            print(on_cluster(args, [os.path.join(args.build, "bench", "zs_collective_bench"), "--min-bytes", "1M",
                                    "--max-bytes", "64M", "--seconds-per-case", "1"]))
    finally:
        subprocess.run([CLUSTER, "--name", NAME, "down"])


if __name__ == "__main__":
    main()
