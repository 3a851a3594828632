#!/usr/bin/python3
"""A checkpoint loader that trusts nothing (issue 14): each finding of the 237-mutant review as
one mutant of a real checkpoint, made with h5py (no ZeroShard code on the writing side), that
`zeroshard-ckpt verify`, `consolidate` and the example's resume (Engine::load) must all
refuse with a message naming the field, its value and what was expected; the example's data
position (client state), which only the example knows, is refused by its resume. Each edited
tag gets its manifest written again (tests/checkpoint/manifest.py), as an editor who knew the
format would, so that these checks behind the manifest are reached; the last cases leave the
manifest as saved and must be refused by it, before HDF5 opens the edited file.

Usage: hostile_checkpoints.py BUILD_DIR MPIRUN
"""
import os
import shutil
import subprocess
import sys
import tempfile

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import manifest  # noqa: E402  (tests/checkpoint/manifest.py)

build, mpirun = sys.argv[1], sys.argv[2]
example = os.path.join(build, "examples", "zs_fashion_mnist")
tool = os.path.join(build, "checkpoint", "zeroshard-ckpt")
work = tempfile.mkdtemp(prefix="zs_hostile_")
# --hidden 20: fc2.bias and fc3.bias are both [10] (tensors of equal shape in different units,
# whose names can be swapped without changing any fragment table).
TRAIN = ["--stage", "3", "--epochs", "1", "--hidden", "20", "--log-every", "1000", "--dropout", "0.1"]


def run(command, **kwargs):
    return subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace", timeout=120, **kwargs)


def files(tag_dir):
    return sorted(os.path.join(tag_dir, f) for f in os.listdir(tag_dir) if f.endswith(".h5"))


def shards(tag_dir):
    return [f for f in files(tag_dir) if not f.endswith("index.h5")]


def set_attr(path, name, value, where="/"):
    with h5py.File(path, "r+") as f:
        obj = f[where]
        if isinstance(value, str):
            obj.attrs[name] = value  # h5py writes a variable-length UTF-8 string, as ZeroShard does
        elif isinstance(value, list):
            obj.attrs[name] = np.array(value, dtype=h5py.string_dtype())
        else:
            obj.attrs.create(name, np.int64(value), dtype="<i8")


def everywhere(name, value, where="/"):
    """The same edit in the index and every data file: no file disagrees with another, so only
    the range checks can refuse it."""
    return lambda tag_dir: [set_attr(p, name, value, where) for p in files(tag_dir)]


def in_file(which, name, value, where="/"):
    return lambda tag_dir: set_attr(os.path.join(tag_dir, which), name, value, where)


def unit_of(path, tensor):
    with h5py.File(path, "r") as f:
        for unit in f["units"]:
            names = [n.decode() if isinstance(n, bytes) else n for n in f["units"][unit].attrs["tensor_names"]]
            if tensor in names:
                return "units/" + unit, names
    raise KeyError(tensor)


def reorder_first_unit(tag_dir):
    # fc1's weight and bias swapped in order, names and shapes together, in one data file.
    path = shards(tag_dir)[0]
    group, names = unit_of(path, "fc1.weight")
    with h5py.File(path, "r") as f:
        shapes = [s.decode() if isinstance(s, bytes) else s for s in f[group].attrs["tensor_shapes"]]
    set_attr(path, "tensor_names", names[::-1], group)
    set_attr(path, "tensor_shapes", shapes[::-1], group)


def swap_names(tag_dir):
    # fc2.bias and fc3.bias ([10] each, in different units) trade names in every data file:
    # each file's fragment tables still match its layout; only the index says otherwise.
    for path in shards(tag_dir):
        g2, n2 = unit_of(path, "fc2.bias")
        g3, n3 = unit_of(path, "fc3.bias")
        set_attr(path, "tensor_names", ["fc3.bias" if n == "fc2.bias" else n for n in n2], g2)
        set_attr(path, "tensor_names", ["fc2.bias" if n == "fc3.bias" else n for n in n3], g3)


def overflowing_shape(tag_dir):
    for path in shards(tag_dir):
        group, names = unit_of(path, "fc1.weight")
        with h5py.File(path, "r") as f:
            shapes = [s.decode() if isinstance(s, bytes) else s for s in f[group].attrs["tensor_shapes"]]
        shapes[names.index("fc1.weight")] = "4,4611686018427391040"
        set_attr(path, "tensor_shapes", shapes, group)


def flip_byte(name):
    def mutate(tag_dir):
        path = os.path.join(tag_dir, name)
        with open(path, "r+b") as f:
            f.seek(os.path.getsize(path) // 2)
            b = f.read(1)
            f.seek(-1, 1)
            f.write(bytes([b[0] ^ 0x10]))
    return mutate


def remove(name):
    return lambda tag_dir: os.remove(os.path.join(tag_dir, name))


def drop_client_key(key):
    def mutate(tag_dir):
        for path in files(tag_dir):
            with h5py.File(path, "r+") as f:
                del f["client_state"].attrs[key]
    return mutate


BIG = 2**63 - 1
# (name, mutation, text every refusal must contain, who must refuse: "files" = verify,
# consolidate and resume; "resume" = the example's resume only, verify and consolidate pass)
CASES = [
    ("step -1", everywhere("step", -1), "field `step` = -1, expected", "files"),
    ("micro_step 0 after steps", everywhere("micro_step", 0), "field `micro_step` = 0, expected", "files"),
    ("step 2^63-1", lambda d: (everywhere("micro_step", BIG)(d), everywhere("step", BIG)(d)),
     "field `step` = 9223372036854775807, expected", "files"),
    ("tensors reordered in one file", reorder_first_unit, "field `fragments`", "files"),
    ("equal-shaped tensors renamed", swap_names, "disagree on which elements belong to which tensor", "files"),
    ("shape overflows int64", overflowing_shape, "overflows", "files"),
    ("shard format_version -1", in_file("shard_00001.h5", "format_version", -1), "field `format_version` = -1", "files"),
    ("unreadable rng_state", in_file("shard_00000.h5", "rng_state", "not a generator"), "field `rng_state` = 'not a generator'", "files"),
    ("optimizer ''", everywhere("optimizer", ""), "field `optimizer` = ''", "files"),
    ("stage 7 in the index", in_file("index.h5", "stage", 7), "field `stage` = 7", "files"),
    ("stage differs index/shard", in_file("index.h5", "stage", 2), "stage 3 differs from the index's 2", "files"),
    ("world_size 2^32+2", everywhere("world_size", 2**32 + 2), "field `world_size` = 4294967298", "files"),
    ("samples_into_epoch -1000000", everywhere("samples_into_epoch", -1000000, "client_state"),
     "`samples_into_epoch` = -1000000, expected", "resume"),
    ("samples_into_epoch 2^62", everywhere("samples_into_epoch", 2**62, "client_state"),
     "`samples_into_epoch` = 4611686018427387904, expected", "resume"),
    ("epoch -5", everywhere("epoch", -5, "client_state"), "`epoch` = -5, expected", "resume"),
    ("epoch missing", drop_client_key("epoch"), "has no client state `epoch`", "resume"),
    # The manifest as saved: refused before HDF5 opens the file.
    ("a data file's byte flipped", flip_byte("shard_00001.h5"), "shard_00001.h5 is corrupt: checksum mismatch", "files"),
    ("the index edited", in_file("index.h5", "stage", 2), "index.h5 is corrupt", "files"),
    ("manifest deleted", remove("manifest.txt"), "manifest.txt is missing, but", "files"),
]
KEEP_MANIFEST = ("a data file's byte flipped", "the index edited", "manifest deleted")


def main():
    base = os.path.join(work, "base")
    log = run([mpirun, "-np", "2", example, *TRAIN, "--save-dir", os.path.join(base, "ckpt"),
               "--metrics", os.path.join(work, "m.jsonl")])
    latest = os.path.join(base, "ckpt", "latest")
    if log.returncode != 0 or not os.path.exists(latest):
        print(log.stdout)
        sys.exit("training the base checkpoint failed")
    with open(latest) as f:
        tag = f.read().strip()
    if not manifest.matches_reference(os.path.join(base, "ckpt", tag)):
        sys.exit("the manifest the save wrote differs from the one Python's zlib.crc32 gives")
    failures = []
    for name, mutate, expected, who in CASES:
        case = os.path.join(work, name.replace(" ", "_").replace("'", "q").replace("/", "_"))
        shutil.copytree(base, case)
        ckpt = os.path.join(case, "ckpt")
        mutate(os.path.join(ckpt, tag))
        if name not in KEEP_MANIFEST:
            manifest.restamp(os.path.join(ckpt, tag))
        outcomes = {
            "verify": run([tool, "verify", ckpt]),
            "consolidate": run([tool, "consolidate", ckpt, "--out", os.path.join(case, "full.h5")]),
            "resume": run([mpirun, "-np", "2", example, *TRAIN, "--save-dir", ckpt, "--resume",
                           "--metrics", os.path.join(case, "m.jsonl")]),
        }
        failed_before = len(failures)
        for reader, result in outcomes.items():
            must_refuse = who == "files" or reader == "resume"
            refused = result.returncode != 0
            if must_refuse and (not refused or expected not in result.stdout):
                failures.append(f"{name}: {reader} exited {result.returncode} without '{expected}':\n{result.stdout[-1500:]}")
            elif not must_refuse and refused:
                failures.append(f"{name}: {reader} refused a checkpoint whose files are valid:\n{result.stdout[-1500:]}")
            elif must_refuse and reader == "resume" and "Segmentation" in result.stdout:
                failures.append(f"{name}: resume crashed")
        if len(failures) == failed_before:
            print(f"{name}: refused as expected ({'verify, consolidate, resume' if who == 'files' else 'resume'})")
        else:
            print(f"{name}: NOT refused as expected")
        shutil.rmtree(case)
    if failures:
        print("\n\n".join(failures))
        sys.exit(f"{len(failures)} failure(s)")
    print(f"hostile checkpoints: ok ({len(CASES)} mutants refused)")


try:
    main()
finally:
    shutil.rmtree(work, ignore_errors=True)
