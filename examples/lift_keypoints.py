"""Lift a person's 2D keypoints (COCO-17 / OpenPose JSON, or npz) to 3D with a trained estimator.

    python examples/lift_keypoints.py KEYPOINTS --format coco --checkpoint WORKDIR --out lifted.npz --gif lifted.gif
    python examples/lift_keypoints.py --smoke --out-dir lift_smoke

The steps, in the Python API (what `ptjax lift` does):
  1. `ptjax.data.keypoints.load_keypoints` reads the files, tracks one person, fills missing joints, smooths and
     normalises them to H36M-17 (T, 17, 2);
  2. `ptjax.estimator.load` restores a checkpoint; `ptjax.lift.lift` runs it (camera-frame 3D, metres) and maps the
     motion to a Z-up world with the estimator's gravity prior;
  3. `ptjax.export` writes the npz and an animation; `ptjax.bvh.write_bvh` a BVH.

Smoke mode makes its own input: a bundled mocap clip seen by a camera becomes a folder of COCO-17 JSON files with
two frames dropped, one frame without anyone, a low-confidence wrist and a second person in the background; a tiny
estimator is trained for a few steps on the other clips; then the folder is lifted and scored against the clip.
"""

from __future__ import annotations

import argparse
import json
import os

import jax
import jax.numpy as jnp
import numpy as np

from ptjax import camera, estimator, export, metrics, skeleton
from ptjax.data import TRAIN_CLIPS, keypoints as kp_io, load_clips, pack_motions, sample_windows
from ptjax.data.takes import fixed_cameras
from ptjax.lift import lift

IMAGE_SIZE = (1000.0, 1000.0)


def lift_file(path: str, fmt: str, checkpoint: str, out: str, gif: str | None, fps: float,
              image_size=None) -> dict:
    keypoints = kp_io.load_keypoints(path, fmt, image_size=image_size)
    state, _ = estimator.load(checkpoint)
    result = lift(state, keypoints, world=True, fps=fps)
    export.write_npz(out, result.arrays())
    if gif:
        export.save_lift_animation(keypoints.keypoints2d, result.joints_world, gif, fps=fps)
    print(f"{keypoints.num_frames} frames, {int(keypoints.filled.sum())} joints filled, "
          f"{int(keypoints.missing_frames.sum())} frames without the person -> {out}")
    return {"keypoints": keypoints, "result": result}


# --- smoke mode: make a COCO folder from a clip, train a tiny estimator, lift ---------------------------------------

def coco_from_h36m(joints_cam: np.ndarray) -> np.ndarray:
    """COCO-17 3D points from H36M-17 camera-frame joints: limbs as they are; eyes and ears placed around the head
    (a stand-in for a detector's face points)."""
    j = skeleton.JOINT_INDEX
    nose, head = joints_cam[:, j["Nose"]], joints_cam[:, j["Head"]]
    lateral = joints_cam[:, j["LShoulder"]] - joints_cam[:, j["RShoulder"]]
    lateral /= np.linalg.norm(lateral, axis=-1, keepdims=True)
    eye_mid, ear_mid = nose + 0.4 * (head - nose), nose + 0.5 * (head - nose)
    points = {"nose": nose, "left_eye": eye_mid + 0.03 * lateral, "right_eye": eye_mid - 0.03 * lateral,
              "left_ear": ear_mid + 0.07 * lateral, "right_ear": ear_mid - 0.07 * lateral}
    for side, prefix in (("L", "left_"), ("R", "right_")):
        for h36m_name, coco_name in (("Shoulder", "shoulder"), ("Elbow", "elbow"), ("Wrist", "wrist"),
                                     ("Hip", "hip"), ("Knee", "knee"), ("Ankle", "ankle")):
            points[prefix + coco_name] = joints_cam[:, j[side + h36m_name]]
    return np.stack([points[n] for n in skeleton.COCO17_NAMES], 1)


def write_smoke_coco_folder(folder: str) -> tuple[np.ndarray, float]:
    """A walking clip seen by a camera, as per-frame COCO JSON files. Returns (camera-frame H36M-17 joints, fps)."""
    clip = load_clips(["walk"])["walk"]
    cams = fixed_cameras(clip.joints[:, 0, :2].mean(0), num_cameras=1)
    cam = camera.Extrinsics(rotation=cams.rotation[0], position=cams.position[0])
    joints_cam = np.asarray(camera.world_to_camera(jnp.asarray(clip.joints), cam))
    intr = camera.h36m_like_intrinsics(*IMAGE_SIZE)
    pixels = np.asarray(camera.project(jnp.asarray(coco_from_h36m(joints_cam)), intr))
    background = pixels * 0.5 + np.array([700.0, 150.0])  # a smaller person farther away
    rng = np.random.default_rng(0)
    os.makedirs(folder, exist_ok=True)
    for t in range(len(pixels)):
        if t in (7, 8):
            continue  # dropped frames: no file at all
        people = []
        for index, person in enumerate((pixels[t], background[t]) if t != 12 else ()):
            conf = rng.uniform(0.7, 1.0, 17)
            if index == 0 and 15 <= t <= 17:
                conf[skeleton.COCO17_NAMES.index("left_wrist")] = 0.05
            people.append({"category_id": 1, "score": 0.9,
                           "keypoints": np.concatenate([person, conf[:, None]], 1).reshape(-1).tolist()})
        with open(os.path.join(folder, f"frame_{t:05d}.json"), "w") as f:
            json.dump(people, f)
    return joints_cam, clip.fps


def train_tiny_estimator(workdir: str, steps: int, seed: int = 0) -> str:
    """A small estimator trained for `steps` steps on the training clips through random cameras."""
    config = estimator.default_config()
    config.model.filter_widths = (3, 3)
    config.model.channels = config.model.traj_channels = 64
    config.model.dropout = 0.0
    config.optim.lr = 1e-3
    config.pairs.adversarial = False
    state = estimator.init(jax.random.PRNGKey(seed), config)
    buffer = pack_motions(list(load_clips(TRAIN_CLIPS).values()), fps=30.0)
    rf = state.spec.receptive_field

    @jax.jit
    def step(state, rng):
        return estimator.update(state, {"motion": sample_windows(rng, buffer, 64, rf)})

    rng = jax.random.PRNGKey(seed + 1)
    for i in range(steps):
        rng, key = jax.random.split(rng)
        state, m = step(state, key)
        if i % max(1, steps // 4) == 0 or i == steps - 1:
            print(f"  step {i:4d}  training MPJPE {float(m['mpjpe']):6.1f} mm")
    estimator.save(workdir, state, config)
    return workdir


def smoke(out_dir: str, steps: int) -> dict:
    if os.path.isdir(out_dir) and os.listdir(out_dir):
        raise SystemExit(f"--out-dir {out_dir!r} must be a new or empty folder (smoke mode writes a fresh checkpoint)")
    folder = os.path.join(out_dir, "coco")
    joints_cam, fps = write_smoke_coco_folder(folder)
    print(f"wrote a COCO-17 folder of {len(joints_cam)} frames: {folder}")
    checkpoint = train_tiny_estimator(os.path.join(out_dir, "estimator"), steps)
    out = lift_file(folder, "coco", checkpoint, os.path.join(out_dir, "lifted.npz"),
                    os.path.join(out_dir, "lifted.gif"), fps, image_size=IMAGE_SIZE)
    scored = list(skeleton.POSETRIPLET16)
    row = metrics.pose_metrics(out["result"].joints3d[:, scored], joints_cam[:, scored])
    print(f"against the clip: MPJPE {row['mpjpe']:.1f} mm, P-MPJPE {row['p_mpjpe']:.1f} mm (tiny estimator, "
          f"{steps} steps)")
    return out | {"metrics": row}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("keypoints", nargs="?", help="folder of JSON files, a JSON file, or an npz")
    parser.add_argument("--format", choices=kp_io.FORMATS, default="coco")
    parser.add_argument("--checkpoint", help="estimator work directory or checkpoint folder")
    parser.add_argument("--out", default="lifted.npz")
    parser.add_argument("--gif")
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--image-size", type=float, nargs=2, metavar=("W", "H"))
    parser.add_argument("--smoke", action="store_true", help="generate input and a tiny estimator, then lift")
    parser.add_argument("--out-dir", default="lift_smoke", help="smoke mode: where everything is written")
    parser.add_argument("--steps", type=int, default=60, help="smoke mode: estimator training steps")
    args = parser.parse_args(argv)
    if args.smoke:
        smoke(args.out_dir, args.steps)
        return 0
    if not (args.keypoints and args.checkpoint):
        parser.error("KEYPOINTS and --checkpoint are required (or use --smoke)")
    lift_file(args.keypoints, args.format, args.checkpoint, args.out, args.gif, args.fps,
              tuple(args.image_size) if args.image_size else None)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
