#!/usr/bin/python3
"""The checkpoint fuzzer (issue 14): random mutants of a real 2-rank ZeRO-3 checkpoint, each read
by `zeroshard-ckpt verify`, `inspect` and `consolidate --optimizer` (CheckpointReader: the
loader Engine::load and the examples' --resume use). Every mutant must be either

  refused cleanly  exit 1 with a message (no signal, no sanitizer report, no hang), by verify
                   and consolidate alike (verify refusing what the loader loads, or the reverse,
                   fails; inspect, which reads no data, must only not crash), or
  harmless         accepted, and consolidate's tensors bitwise equal to the original's.

No crash is tolerated, inside HDF5 or not: every file is checked against the tag's manifest
(size and CRC-32) before HDF5 opens it, so a damaged byte never reaches HDF5's parser.

Mutation classes: bytes (1-8 random bytes of a file flipped, the manifest included),
truncation, attribute (an attribute of any object of any file set to a boundary or garbage
value of its kind, or deleted), structure (a dataset or group deleted, renamed, or replaced by
one of another size or type), files (a data file deleted, copied over another, or its index's),
manifest (deleted, a line dropped, doubled or garbled, a size or CRC changed, a file added),
latest (DIR/latest emptied, garbage, naming a missing, hidden or staging tag, or a path).
Attribute and structure mutants are made with h5py (valid HDF5); half of them also get their
manifest written again (class "...+manifest": an editor who knew the format, or a buggy
writer), so that the checks behind the manifest (the field ranges, layouts, fragment tables,
index against data files) are fuzzed too; the others must be refused by the manifest.

Usage: checkpoint_fuzz.py BUILD_DIR MPIRUN [--mutants N] [--seed S] [--keep-failures DIR]
CI runs 150 mutants with seed 1 (~1 min); docs/ci.md gives the long run.
"""
import argparse
import collections
import os
import random
import shutil
import subprocess
import sys
import tempfile

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import manifest  # noqa: E402  (tests/checkpoint/manifest.py)

parser = argparse.ArgumentParser()
parser.add_argument("build")
parser.add_argument("mpirun")
parser.add_argument("--mutants", type=int, default=150)
parser.add_argument("--seed", type=int, default=1)
parser.add_argument("--keep-failures", default="")
parser.add_argument("--only", default="", help="comma-separated mutant numbers to read (the others are drawn, not read)")
args = parser.parse_args()
tool = os.path.join(args.build, "checkpoint", "zeroshard-ckpt")
example = os.path.join(args.build, "examples", "zs_fashion_mnist")
rng = random.Random(args.seed)
CRASH_SIGNS = ("terminate called", "Segmentation", "AddressSanitizer", "runtime error:", "Aborted", "core dumped")


def run(command):
    try:
        r = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace", timeout=60)
        return r.returncode, r.stdout
    except subprocess.TimeoutExpired:
        return "timeout", ""


def tensors(path):
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: out.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return out


def objects(f):
    found = [f["/"]]
    f.visititems(lambda name, obj: found.append(obj))
    return found


INTS = [-1, 0, 1, 2, 3, 7, 2**31 - 1, 2**31, 2**32 + 2, 2**53 + 1, 2**62, 2**63 - 1, -2**63]
STRINGS = ["", "x", "-1", "1e400", "nan", "4,4611686018427391040", "../../etc/passwd", "\u00e9\u20ac", "a" * 5000, "0,0"]


def mutate_attribute(tag_dir, h5files):
    path = rng.choice(h5files)
    with h5py.File(path, "r+") as f:
        candidates = [(o, a) for o in objects(f) for a in o.attrs.keys()]
        if not candidates:
            return "attribute: none"
        obj, name = rng.choice(candidates)
        value = obj.attrs[name]
        what = f"attribute {os.path.basename(path)}:{obj.name}@{name}"
        if rng.random() < 0.15:
            del obj.attrs[name]
            return what + " deleted"
        if isinstance(value, (bytes, str)) or (isinstance(value, np.ndarray) and value.dtype.kind in "OSU" and value.ndim == 0):
            obj.attrs[name] = rng.choice(STRINGS)
        elif isinstance(value, np.ndarray) and value.dtype.kind in "OSU":
            items = [v.decode() if isinstance(v, bytes) else str(v) for v in value]
            choice = rng.randrange(4)
            if choice == 0:
                items = items[::-1]
            elif choice == 1 and items:
                items = items[:-1]
            elif choice == 2:
                items = items + items[:1]
            elif items:
                items[rng.randrange(len(items))] = rng.choice(STRINGS)
            obj.attrs[name] = np.array(items, dtype=h5py.string_dtype())
        elif isinstance(value, np.ndarray) and value.size > 0:
            changed = value.copy()
            changed.flat[rng.randrange(changed.size)] ^= 1 << rng.randrange(8 * changed.itemsize)
            obj.attrs[name] = changed
        else:
            obj.attrs.create(name, np.int64(rng.choice(INTS + [int(value) + 1, int(value) - 1])), dtype="<i8")
        return what


def mutate_structure(tag_dir, h5files):
    path = rng.choice(h5files)
    with h5py.File(path, "r+") as f:
        names = []
        f.visit(names.append)
        if not names:
            return "structure: empty"
        name = rng.choice(names)
        choice = rng.randrange(3)
        where = f"structure {os.path.basename(path)}:{name}"
        if choice == 0:
            del f[name]
            return where + " deleted"
        if choice == 1:
            f.move(name, name + "_renamed")
            return where + " renamed"
        if isinstance(f[name], h5py.Dataset) and not f[name].is_virtual:
            data = f[name][()]
            attrs = dict(f[name].attrs)
            del f[name]
            size = max(0, data.size + rng.choice([-1, 1, 1024]))
            kind = rng.choice(["<f4", "<f8", "<i4"])
            f.create_dataset(name, data=np.resize(data.reshape(-1), size).astype(kind))
            for k, v in attrs.items():
                f[name].attrs[k] = v
            return where + f" replaced by {size} x {kind}"
        del f[name]
        return where + " deleted"


def mutate_manifest(tag_dir, h5files):
    path = os.path.join(tag_dir, "manifest.txt")
    with open(path) as f:
        lines = f.read().splitlines()
    choice = rng.randrange(8)
    if choice == 0:
        os.remove(path)
        return "manifest deleted"
    entry = rng.randrange(1, len(lines))
    crc, size, name = lines[entry].split(" ", 2)
    if choice == 1:
        del lines[entry]
        what = f"line of {name} dropped"
    elif choice == 2:
        lines.insert(entry, lines[entry])
        what = f"line of {name} doubled"
    elif choice == 3:
        lines[entry] = f"{(int(crc, 16) ^ (1 << rng.randrange(32))):08x} {size} {name}"
        what = f"CRC of {name} changed"
    elif choice == 4:
        lines[entry] = f"{crc} {int(size) + rng.choice([-1, 1, 4096])} {name}"
        what = f"size of {name} changed"
    elif choice == 5:
        lines.append(f"{crc} {size} extra.h5")
        what = "a file added"
    elif choice == 6:
        lines[entry] = rng.choice(["", "x", f"{crc}  {size} {name}", f"{crc.upper()} {size} {name}",
                                   f"{crc} -{size} {name}", f"{crc} {size} ../{name}", f"{crc} 99999999999999999999 {name}"])
        what = f"line of {name} garbled"
    else:
        lines[0] = "# something else"
        what = "header changed"
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return "manifest " + what


def mutate_bytes(tag_dir, h5files):
    path = rng.choice(h5files + [os.path.join(tag_dir, "manifest.txt")])
    with open(path, "r+b") as f:
        data = bytearray(f.read())
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        f.seek(0)
        f.write(data)
    return f"bytes {os.path.basename(path)}"


def mutate_truncation(tag_dir, h5files):
    path = rng.choice(h5files + [os.path.join(tag_dir, "manifest.txt")])
    size = os.path.getsize(path)
    new = rng.choice([0, 8, 512, rng.randrange(size), size - 1])
    os.truncate(path, new)
    return f"truncation {os.path.basename(path)} to {new}"


def mutate_files(tag_dir, h5files):
    shard = [p for p in h5files if "shard_" in p]
    choice = rng.randrange(3)
    if choice == 0:
        victim = rng.choice(h5files)
        os.remove(victim)
        return f"files {os.path.basename(victim)} deleted"
    if choice == 1:
        shutil.copy(shard[0], shard[1])
        return "files shard_00000 copied over shard_00001"
    shutil.copy(shard[1], os.path.join(tag_dir, "index.h5"))
    return "files a shard copied over index.h5"


def mutate_latest(tag_dir, h5files):
    latest = os.path.join(os.path.dirname(tag_dir), "latest")
    tag = os.path.basename(tag_dir)
    text = rng.choice(["", "\n", "garbage", "step_999999", "." + tag, tag + ".incomplete", "../" + tag, "/",
                       "latest", tag + "/index.h5", "\0" + tag, tag + " ", "x" * 5000])
    with open(latest, "w") as f:
        f.write(text)
    return f"latest {text[:30]!r}"


CLASSES = {"bytes": mutate_bytes, "truncation": mutate_truncation, "attribute": mutate_attribute,
           "structure": mutate_structure, "files": mutate_files, "manifest": mutate_manifest, "latest": mutate_latest}
WEIGHTS = {"bytes": 3, "truncation": 1, "attribute": 4, "structure": 2, "files": 1, "manifest": 1, "latest": 1}
RESTAMPED = ("attribute", "structure")  # valid HDF5 made by h5py: half get their manifest written again


def main(work):
    base = os.path.join(work, "base")
    code, out = run([args.mpirun, "-np", "2", example, "--stage", "3", "--epochs", "1", "--hidden", "16",
                     "--log-every", "100000", "--save-dir", os.path.join(base, "ckpt"),
                     "--metrics", os.path.join(work, "m.jsonl")])
    if code != 0:
        print(out)
        sys.exit("training the base checkpoint failed")
    with open(os.path.join(base, "ckpt", "latest")) as f:
        tag = f.read().strip()
    code, out = run([tool, "consolidate", os.path.join(base, "ckpt"), "--out", os.path.join(work, "orig.h5"), "--optimizer"])
    assert code == 0, out
    original = tensors(os.path.join(work, "orig.h5"))
    if not manifest.matches_reference(os.path.join(base, "ckpt", tag)):
        sys.exit("the manifest the save wrote differs from the one Python's zlib.crc32 gives")
    refused, harmless, failures, harmless_cases = collections.Counter(), collections.Counter(), [], []
    before_hdf5 = 0  # refusals by the manifest check: the file never reached HDF5
    names = list(CLASSES)
    global rng
    for i in range(args.mutants):
        # One stream per mutant: what mutant i is does not depend on how many draws the
        # earlier mutants took (rejection sampling in randrange takes more or fewer by size).
        rng = random.Random(f"{args.seed}/{i}")
        kind = rng.choices(names, weights=[WEIGHTS[n] for n in names])[0]
        case = os.path.join(work, f"m{i}")
        shutil.copytree(base, case)
        ckpt = os.path.join(case, "ckpt")
        tag_dir = os.path.join(ckpt, tag)
        h5files = sorted(os.path.join(tag_dir, f) for f in os.listdir(tag_dir) if f.endswith(".h5"))
        try:
            what = CLASSES[kind](tag_dir, h5files)
            if kind in RESTAMPED and rng.random() < 0.5:
                manifest.restamp(tag_dir)
                kind += "+manifest"
                what += ", manifest written again"
        except Exception as e:  # h5py could not make this mutant (e.g. an attribute of an odd kind)
            what = f"{kind}: not applied ({type(e).__name__})"
        if args.only and str(i) not in args.only.split(","):
            shutil.rmtree(case)
            continue
        results = {
            "verify": run([tool, "verify", ckpt]),
            "inspect": run([tool, "inspect", ckpt]),
            "consolidate": run([tool, "consolidate", ckpt, "--out", os.path.join(case, "out.h5"), "--optimizer"]),
        }
        problem = None
        for reader, (code, out) in results.items():
            if code not in (0, 1) or any(sign in out for sign in CRASH_SIGNS):
                problem = f"{reader} did not exit cleanly ({code}):\n{out[-2000:]}"
        # inspect prints metadata (it reads one data file's header, no data): it must not crash,
        # but may accept what the readers of data refuse.
        codes = {reader: code for reader, (code, _) in results.items() if reader != "inspect"}
        if problem is None and len(set(codes.values())) > 1:
            problem = "the readers disagree: " + ", ".join(f"{r} exit {c}" for r, c in codes.items()) + "\n" + \
                      "\n".join(f"{r}: {o[-600:]}" for r, (c, o) in results.items() if c != 0)
        if problem is None and codes["consolidate"] == 0:
            loaded = tensors(os.path.join(case, "out.h5"))
            same = loaded.keys() == original.keys() and all(
                np.array_equal(loaded[k], original[k]) if np.asarray(original[k]).dtype.kind == "f" else True
                for k in original)
            if not same:
                problem = "accepted, but the loaded tensors differ from the original's"
        if problem:
            failures.append(f"mutant {i} ({what}): {problem}")
            if args.keep_failures:
                shutil.copytree(case, os.path.join(args.keep_failures, f"m{i}"), dirs_exist_ok=True)
        elif codes["consolidate"] == 0:
            harmless[kind] += 1
            harmless_cases.append(f"mutant {i}: {what}")
        else:
            refused[kind] += 1
            message = results["consolidate"][1]
            before_hdf5 += "manifest.txt" in message and "field `manifest`" not in message
        shutil.rmtree(case)
    print(f"{args.mutants} mutants (seed {args.seed}): {sum(refused.values())} refused cleanly "
          f"({', '.join(f'{k} {v}' for k, v in sorted(refused.items()))}), {sum(harmless.values())} harmless, "
          f"loaded equal to the original ({', '.join(f'{k} {v}' for k, v in sorted(harmless.items()))}), "
          f"{len(failures)} failure(s); {before_hdf5} of the refusals by the manifest, before HDF5 opened a file")
    if harmless_cases:
        print("harmless (loaded equal):\n  " + "\n  ".join(harmless_cases))
    if failures:
        print("\n\n".join(failures))
        sys.exit(1)
    print("checkpoint fuzz: ok")


work = tempfile.mkdtemp(prefix="zs_fuzz_")
try:
    main(work)
finally:
    shutil.rmtree(work, ignore_errors=True)
