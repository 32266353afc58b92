"""Lift a person's 2D keypoints from a video to 3D with a trained estimator: `ptjax lift`.

    ptjax lift KEYPOINTS --format {h36m,coco,openpose} --checkpoint DIR --out OUT.npz
               [--world] [--bvh OUT.bvh] [--gif OUT.gif] [--fps 30] [--image-size W H] ...

KEYPOINTS is read by `ptjax.data.keypoints.load_keypoints` (tracking, gap filling, smoothing, square-padding
normalisation). OUT.npz holds (DESIGN.md contract) `joints3d` (T, 17, 3): H36M-17 joints in the camera frame
(OpenCV axes), metres = root-relative `pose` + root `trajectory`; and beside it the estimator input `keypoints2d`,
`keypoints_pixels`, `confidence`, `filled`, `missing_frames`, `image_size`, `square_frame`, `fps`, `joint_names`,
and with `--world` `joints_world` (Z-up world frame from the estimator's gravity prior, `camera_to_world`).
`--bvh` writes the world-frame motion as BVH (`ptjax.bvh.write_bvh`); `--gif` the 2D input beside the 3D motion.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ptjax import export, skeleton
from ptjax.data import keypoints as kp_io

DEFAULT_FPS = 30.0  # PoseTriplet's in-the-wild script renders at 30 fps


@dataclasses.dataclass(frozen=True)
class LiftResult:
    keypoints: kp_io.Keypoints
    pose: np.ndarray          # (T, 17, 3) root-relative, camera frame, metres
    trajectory: np.ndarray    # (T, 3) root position, camera frame, metres
    joints3d: np.ndarray      # (T, 17, 3) camera frame, metres
    joints_world: np.ndarray | None  # (T, 17, 3) world frame, Z-up, metres (gravity prior)
    fps: float

    def arrays(self) -> dict:
        out = {
            "joints3d": self.joints3d, "pose": self.pose, "trajectory": self.trajectory,
            "keypoints2d": self.keypoints.keypoints2d, "keypoints_pixels": self.keypoints.pixels,
            "confidence": self.keypoints.confidence, "filled": self.keypoints.filled,
            "fallback": (self.keypoints.fallback if self.keypoints.fallback is not None
                         else np.zeros(self.keypoints.filled.shape, np.int8)),
            "missing_frames": self.keypoints.missing_frames,
            "image_size": np.asarray(self.keypoints.image_size, np.float32),
            "image_size_source": np.asarray(self.keypoints.image_size_source),
            "square_frame": np.asarray(self.keypoints.square_frame, np.float32),
            "fps": np.float32(self.fps), "joint_names": np.asarray(skeleton.JOINT_NAMES),
            "source_format": np.asarray(self.keypoints.source_format),
            "source_layout": np.asarray(self.keypoints.source_layout),
        }
        if self.joints_world is not None:
            out["joints_world"] = self.joints_world
        return out


def _estimator():
    try:
        from ptjax import estimator
    except ImportError as e:
        raise ValueError(f"the estimator package (ptjax.estimator) is not available: {e}") from e
    return estimator


def lift(state, keypoints: kp_io.Keypoints, world: bool = False, fps: float = DEFAULT_FPS) -> LiftResult:
    """Run the estimator `state` over `keypoints` (any length); optionally add the world-frame motion."""
    if not (np.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be a positive number, got {fps}")
    estimator = _estimator()
    pred = estimator.predict(state, keypoints.keypoints2d)
    joints3d = skeleton.check_joints(np.asarray(pred["joints3d"], np.float32), name="estimated joints3d")
    if joints3d.shape != (keypoints.num_frames, skeleton.NUM_JOINTS, 3):
        raise ValueError(f"estimator returned joints3d {joints3d.shape} for {keypoints.num_frames} frames")
    joints_world = None
    if world:
        joints_world = skeleton.check_joints(np.asarray(estimator.camera_to_world(joints3d), np.float32),
                                             name="world joints")
    return LiftResult(keypoints=keypoints, pose=np.asarray(pred["pose"], np.float32),
                      trajectory=np.asarray(pred["trajectory"], np.float32).reshape(len(joints3d), 3),
                      joints3d=joints3d, joints_world=joints_world, fps=float(fps))


def lift_file(path: str, fmt: str, checkpoint: str, out: str, world: bool = False, bvh: str | None = None,
              gif: str | None = None, fps: float = DEFAULT_FPS, round_index: int | None = None,
              **keypoint_options) -> LiftResult:
    """Read keypoints, lift them with the checkpoint's estimator (an estimator workdir, or a co-evolution workdir:
    its last finished round's, or `round_index`'s) and write OUT.npz (+ BVH, GIF)."""
    if not (np.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be a positive number, got {fps}")
    keypoints = kp_io.load_keypoints(path, fmt, **keypoint_options)
    state, _ = _estimator().load(checkpoint, round_index=round_index)
    result = lift(state, keypoints, world=world or bool(bvh) or bool(gif), fps=fps)
    arrays = result.arrays()
    if not world:
        arrays.pop("joints_world", None)
    export.write_npz(out, arrays)
    if bvh:
        from ptjax import bvh as bvh_io
        bvh_io.write_bvh(bvh, result.joints_world, fps)
    if gif:
        export.save_lift_animation(keypoints.keypoints2d, result.joints_world, gif, fps=fps)
    return result


# --- CLI ------------------------------------------------------------------------------------------------------------

def _lift_command(args, overrides) -> int:
    if overrides:
        raise ValueError(f"ptjax lift takes no config overrides (got {overrides})")
    _, used = _estimator().resolve(args.checkpoint, args.round)
    print(f"lifting with {used}")
    result = lift_file(args.keypoints, args.format, args.checkpoint, args.out, world=args.world, bvh=args.bvh,
                       gif=args.gif, fps=args.fps, round_index=args.round,
                       image_size=tuple(args.image_size) if args.image_size else None,
                       layout=args.layout, confidence_threshold=args.confidence_threshold,
                       max_missing=args.max_missing, smoothing=not args.no_smooth, person=args.person)
    kp = result.keypoints
    print(f"lifted {kp.num_frames} frames ({kp.source_format}/{kp.source_layout}; image size {kp.image_size[0]:g}x"
          f"{kp.image_size[1]:g} {kp.image_size_source}); filled {int(kp.filled.sum())} joint(s), "
          f"{int(kp.missing_frames.sum())} frame(s) without the person")
    for path in (args.out, args.bvh, args.gif):
        if path:
            print(f"wrote {path}")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("lift", help="lift 2D keypoints (COCO, OpenPose, npz) to 3D with an estimator",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("keypoints", help="folder of per-frame JSON files, a JSON file, or an .npz")
    p.add_argument("--format", required=True, choices=kp_io.FORMATS,
                   help="h36m: npz in H36M-17 order; coco: COCO-17 JSON (folder or file) or npz; "
                        "openpose: folder of OpenPose JSON (BODY_25/BODY_25B)")
    p.add_argument("--checkpoint", required=True,
                   help="an estimator workdir, or a co-evolution workdir (its last finished round's estimator)")
    p.add_argument("--round", type=int, help="with a co-evolution workdir: the estimator of this round")
    p.add_argument("--out", required=True, help="output .npz (joints3d: (T, 17, 3) camera frame, metres)")
    p.add_argument("--world", action="store_true", help="also store joints_world (Z-up, gravity prior)")
    p.add_argument("--bvh", help="also write the world-frame motion as BVH")
    p.add_argument("--gif", help="also write an animation (.gif, or .mp4 with the [viz] extra)")
    p.add_argument("--fps", type=float, default=DEFAULT_FPS, help="frame rate of the keypoints (default 30)")
    p.add_argument("--image-size", type=float, nargs=2, metavar=("W", "H"),
                   help="image width and height in pixels (else read from the file or estimated)")
    p.add_argument("--layout", default="auto", choices=("auto",) + kp_io.OPENPOSE_LAYOUTS,
                   help="OpenPose model (default: detected)")
    p.add_argument("--confidence-threshold", type=float, default=kp_io.DEFAULT_CONFIDENCE_THRESHOLD,
                   help="joints below this confidence are missing and interpolated (default 0.2)")
    p.add_argument("--max-missing", type=float, default=kp_io.DEFAULT_MAX_MISSING,
                   help="refuse when a joint or the person is missing in more than this fraction of frames")
    p.add_argument("--no-smooth", action="store_true", help="skip Savitzky-Golay smoothing")
    p.add_argument("--person", type=int, help="index of the person to track in the first frame with detections "
                                              "(default: the largest)")
    p.set_defaults(func=_lift_command)
