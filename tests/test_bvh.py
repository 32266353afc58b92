"""BVH export/import: round trip on the bundled clips, the file layout, and clear errors on bad files."""

import os

import numpy as np
import pytest

from ptjax import bvh, skeleton
from ptjax.data import load_clips


@pytest.mark.parametrize("unit", ["m", "cm"])
def test_round_trip_all_clips(tmp_path, unit):
    worst = 0.0
    for name, motion in load_clips().items():
        path = str(tmp_path / f"{name}.bvh")
        bvh.write_bvh(path, motion.joints, motion.fps, unit=unit)
        joints, fps = bvh.read_bvh(path, unit=unit)
        assert joints.shape == motion.joints.shape
        assert abs(fps - motion.fps) < 1e-6 * motion.fps
        worst = max(worst, float(np.abs(joints - motion.joints).max()))
    assert worst <= 1e-3, f"BVH round-trip error {worst * 1000:.4f} mm"
    assert worst < 1e-5  # in practice it is float precision


def test_file_layout_and_axes(tmp_path):
    walk = load_clips(["walk"])["walk"]
    path = str(tmp_path / "walk.bvh")
    bvh.write_bvh(path, walk.joints, walk.fps, unit="cm")
    joints, motion, frame_time = bvh.parse_bvh(path)
    names = [j["name"] for j in joints]
    assert names[0] == "Hip" and set(skeleton.JOINT_NAMES) <= set(names)
    assert joints[0]["channels"] == ["Xposition", "Yposition", "Zposition", "Zrotation", "Xrotation", "Yrotation"]
    assert all(j["channels"] == ["Zrotation", "Xrotation", "Yrotation"] for j in joints[1:])
    assert motion.shape == (walk.num_frames, 6 + 3 * (len(joints) - 1))
    assert frame_time == pytest.approx(1 / 30)
    # Y-up file in centimetres: (x, y, z) world -> (x, z, -y) * 100.
    np.testing.assert_allclose(motion[:, :3], walk.joints[:, 0] @ bvh.Z_UP_TO_Y_UP.T * 100, atol=1e-4)
    # The file's rest pose stands upright along +Y with the left hip on -Z (world +y).
    offsets = {j["name"]: j["offset"] for j in joints}
    assert offsets["Spine"][1] > 0 and offsets["RKnee"][1] < 0 and offsets["LHip"][2] < 0


def _write_walk(tmp_path) -> tuple[str, list[str]]:
    walk = load_clips(["walk"])["walk"]
    path = str(tmp_path / "walk.bvh")
    bvh.write_bvh(path, walk.joints, walk.fps)
    with open(path) as f:
        return path, f.read().splitlines()


def _save(tmp_path, lines, name="bad.bvh") -> str:
    path = str(tmp_path / name)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def test_bad_files(tmp_path):
    _, lines = _write_walk(tmp_path)
    motion_at = lines.index("MOTION")
    cases = {
        "truncated": (lines[:-3], "truncated"),
        "cut_in_hierarchy": (lines[:20], "ends early"),
        "short_line": (lines[:-1] + [" ".join(lines[-1].split()[:-4])], "values, expected"),
        "garbled_number": (lines[:-1] + [lines[-1].replace(lines[-1].split()[5], "1.2.3", 1)], "non-numeric"),
        "nan_value": (lines[:-1] + [lines[-1].replace(lines[-1].split()[5], "nan", 1)], "non-finite"),
        "no_hierarchy": (lines[1:], "expected 'HIERARCHY'"),
        "bad_channel": ([ln.replace("Zrotation", "Qrotation", 1) for ln in lines], "unknown channel"),
        "bad_frames": (lines[:motion_at + 1] + ["Frames: many"] + lines[motion_at + 2:], "frame count"),
        "extra_lines": (lines + [lines[-1]], "more motion lines"),
        "renamed_joint": ([ln.replace("JOINT RKnee", "JOINT knee_r") for ln in lines], "no joint"),
    }
    for name, (content, message) in cases.items():
        path = _save(tmp_path, content, f"{name}.bvh")
        with pytest.raises(ValueError, match=message):
            bvh.read_bvh(path)
    binary = str(tmp_path / "binary.bvh")
    with open(binary, "wb") as f:
        f.write(bytes(range(256)) * 4)
    with pytest.raises(ValueError, match="not text|HIERARCHY"):
        bvh.read_bvh(binary)
    with pytest.raises(FileNotFoundError):
        bvh.read_bvh(str(tmp_path / "missing.bvh"))
    with pytest.raises(ValueError, match="unit"):
        bvh.read_bvh(_save(tmp_path, lines), unit="inch")


def test_write_rejects_bad_input(tmp_path):
    walk = load_clips(["walk"])["walk"].joints
    path = str(tmp_path / "x.bvh")
    bad = walk.copy()
    bad[4, 2] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        bvh.write_bvh(path, bad, 30)
    with pytest.raises(ValueError, match=r"\(T, 17, 3\)"):
        bvh.write_bvh(path, walk[0], 30)
    with pytest.raises(ValueError, match="fps"):
        bvh.write_bvh(path, walk, 0)
    with pytest.raises(ValueError, match="unit"):
        bvh.write_bvh(path, walk, 30, unit="ft")
    assert not os.path.exists(path)
