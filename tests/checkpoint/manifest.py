"""A tag's manifest (DIR/TAG/manifest.txt, docs/checkpoint-format.md "Manifest") computed with
Python's own zlib.crc32: an independent reference for the C++ writer, and the way a test that
edits a checkpoint's files on purpose (to reach the checks behind the manifest) writes the
manifest again, as an editor who knew the format would."""
import os
import zlib

HEADER = "# ZeroShard checkpoint manifest 1: CRC-32 (zlib's, as Python's zlib.crc32), size in bytes, file"


def digest(path):
    crc, size = 0, 0
    with open(path, "rb") as f:
        while True:
            chunk = f.read(1 << 24)
            if not chunk:
                return crc, size
            crc = zlib.crc32(chunk, crc)
            size += len(chunk)


def listed(tag_dir):
    """The file names the tag's manifest lists."""
    with open(os.path.join(tag_dir, "manifest.txt")) as f:
        return [line.split(" ", 2)[2] for line in f.read().splitlines()[1:]]


def text(tag_dir, names):
    lines = [HEADER]
    for name in sorted(names):
        crc, size = digest(os.path.join(tag_dir, name))
        lines.append(f"{crc:08x} {size} {name}")
    return "\n".join(lines) + "\n"


def restamp(tag_dir):
    """Writes the manifest again with the current digests of the files it lists."""
    names = listed(tag_dir)
    with open(os.path.join(tag_dir, "manifest.txt"), "w") as f:
        f.write(text(tag_dir, names))


def matches_reference(tag_dir):
    """True if the manifest ZeroShard wrote is, byte for byte, the one computed here."""
    with open(os.path.join(tag_dir, "manifest.txt")) as f:
        written = f.read()
    names = sorted(n for n in os.listdir(tag_dir) if n.endswith(".h5"))
    return written == text(tag_dir, names)


def strip(tag_dir):
    """Makes the tag one saved before manifests: no manifest.txt, no `manifest` attribute in its index."""
    import h5py
    os.remove(os.path.join(tag_dir, "manifest.txt"))
    with h5py.File(os.path.join(tag_dir, "index.h5"), "r+") as f:
        del f.attrs["manifest"]
