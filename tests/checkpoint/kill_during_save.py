#!/usr/bin/python3
"""The kill test (issue 14): SIGKILL one rank of a 2-rank job at a random moment while it saves a
checkpoint every 2 steps (sync and async saves alternating between trials, retention on). After
each kill the job must end within seconds (mpirun sees the dead rank and stops the other), and
DIR/latest, where a save has committed, must pass `zeroshard-ckpt verify` and be loadable by
`consolidate`. Kill moments are drawn from a fixed seed, spread over the whole run.

Usage: kill_during_save.py BUILD_DIR MPIRUN [--trials N] [--seed S]
"""
import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

parser = argparse.ArgumentParser()
parser.add_argument("build")
parser.add_argument("mpirun")
parser.add_argument("--trials", type=int, default=8)
parser.add_argument("--seed", type=int, default=1)
args = parser.parse_args()
example = os.path.join(args.build, "examples", "zs_fashion_mnist")
tool = os.path.join(args.build, "checkpoint", "zeroshard-ckpt")
rng = random.Random(args.seed)
ENDS_WITHIN = 15.0  # seconds from the kill to the job's end


def children(pid):
    try:
        out = subprocess.run(["pgrep", "-P", str(pid)], stdout=subprocess.PIPE, text=True).stdout
    except FileNotFoundError:
        return []
    return [int(p) for p in out.split()]


def main(work):
    failures, verified, empty = [], 0, 0
    for trial in range(args.trials):
        mode = "async" if trial % 2 else "sync"
        save_dir = os.path.join(work, f"t{trial}")
        command = [args.mpirun, "-np", "2", example, "--stage", "3", "--epochs", "1", "--hidden", "64",
                   "--log-every", "100000", "--save-dir", save_dir, "--save-every", "2",
                   "--checkpoint.keep_last=3", f"--checkpoint.async={'true' if mode == 'async' else 'false'}",
                   "--metrics", os.path.join(work, "m.jsonl")]
        log_path = os.path.join(work, f"t{trial}.log")  # a file, not a pipe nobody drains
        with open(log_path, "wb") as log:
            job = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        # Wait for the first committed save, then kill at a random moment of the saving run.
        started = time.monotonic()
        while not os.path.exists(os.path.join(save_dir, "latest")) and job.poll() is None and time.monotonic() - started < 60:
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 1.5))
        ranks = children(job.pid)
        if job.poll() is not None or not ranks:
            failures.append(f"trial {trial} ({mode}): the job ended before the kill (exit {job.poll()}):\n"
                            f"{open(log_path, errors='replace').read()[-1500:]}")
            continue
        victim = rng.choice(ranks)
        os.kill(victim, signal.SIGKILL)
        killed = time.monotonic()
        try:
            job.wait(timeout=ENDS_WITHIN)
        except subprocess.TimeoutExpired:
            os.killpg(job.pid, signal.SIGKILL)
            job.wait()
            failures.append(f"trial {trial} ({mode}): the job did not end within {ENDS_WITHIN:.0f} s of the kill")
            continue
        ended = time.monotonic() - killed
        if not os.path.exists(os.path.join(save_dir, "latest")):
            empty += 1
            print(f"trial {trial} ({mode}): killed a rank, job ended in {ended:.1f} s, no save committed yet")
            continue
        tags = sorted(os.listdir(save_dir))
        check = subprocess.run([tool, "verify", save_dir], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace")
        load = subprocess.run([tool, "consolidate", save_dir, "--out", os.path.join(work, "c.h5"), "--optimizer"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace")
        if check.returncode != 0 or load.returncode != 0:
            failures.append(f"trial {trial} ({mode}): latest does not verify/load after the kill; directory {tags}:\n"
                            f"{check.stdout[-1500:]}\n{load.stdout[-800:]}")
            continue
        verified += 1
        print(f"trial {trial} ({mode}): killed a rank, job ended in {ended:.1f} s, latest verifies "
              f"({check.stdout.strip().splitlines()[0][:80]}); left: {' '.join(tags)}")
        shutil.rmtree(save_dir)
    if failures:
        print("\n\n".join(failures))
        sys.exit(f"{len(failures)} failure(s)")
    print(f"kill during save: ok ({args.trials} kills, latest verified after {verified}, {empty} before any save)")


work = tempfile.mkdtemp(prefix="zs_kill_")
try:
    main(work)
finally:
    shutil.rmtree(work, ignore_errors=True)
