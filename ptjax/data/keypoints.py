"""In-the-wild 2D keypoints: read detector output, track one person, fill gaps, smooth, normalise to H36M-17.

Inputs (`load_keypoints(path, fmt)`):
* `coco`: COCO-17 keypoints, either a folder of per-frame JSON files or one JSON file. A per-frame file holds a
  list of detections, or a dict with that list under `annotations`, `people`, `instances` or `predictions`; a
  detection has `keypoints` = 51 numbers (x, y, score per joint) or 17 x 3. A single file is COCO-results style (a
  list of detections with `image_id`, as AlphaPose's `alphapose-results.json`) or COCO-annotations style (a dict
  with `annotations` and `images`, the latter giving each frame's `width`/`height`). A `.npz` with `keypoints`
  (or PoseTriplet's cached `kpts`) (T, 17, 2|3) in COCO order is read too.
* `openpose`: a folder of OpenPose per-frame JSON files, `people[i].pose_keypoints_2d` = flat (x, y, c) per joint,
  BODY_25 or BODY_25B (both 25 joints: told apart by `layout`, or detected: BODY_25's joint 1 is the neck, midway
  between the shoulders, BODY_25B's joint 1 is the left eye, beside the nose).
* `h36m`: a `.npz` with `keypoints` (T, 17, 2|3) in H36M-17 order, optional `confidence` (T, 17),
  `image_width`/`image_height` (or `image_size` = [w, h]), and `normalized` = True when the keypoints already are
  normalised screen coordinates.

Frames are ordered by the last number in each file name (or `image_id`); numbers that are skipped become missing
frames. Joints are missing where the file has none, where a coordinate is not finite, or where the confidence is
below `confidence_threshold`.

Processing, in order:
1. Person tracking: in the first frame with anyone in it, the `person`-th detection (default: the one with the
   largest keypoint box); in each later frame the detection whose keypoint centroid is nearest the tracked person's
   last centroid, if it is within `max_jump` box diagonals per elapsed frame (else the frame has no person).
2. Gap filling: each missing joint is linearly interpolated over time between its nearest valid frames (held
   constant before the first and after the last valid frame). Refused (ValueError) when an H36M-17 joint is missing
   in more than `max_missing` of the frames, counting a derived joint as missing when any source joint it is built
   from is.
3. Savitzky-Golay smoothing over time, window 5, order 2, as PoseTriplet's in-the-wild script
   (`estimator_inference/videopose-j16-wild-eval_run.py::keypoint_smoothing`); skipped for sequences shorter than
   the window.
4. Conversion to H36M-17 with `ptjax.skeleton.convert`.
5. Square-padding normalisation as the same script (`keypoint_square_padding`): the shorter image side is padded
   equally on both sides (integer pixels) to a square of the longer side L, then x -> x / L * 2 - 1 (VideoPose3D's
   `normalize_screen_coordinates` on the square). When the file gives no image size and none is passed, the square
   is estimated: centred on the box around all tracked keypoints, twice its longer side (a person filling about half
   of the frame height, as in Human3.6M), with a warning; `Keypoints.image_size_source` says which.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import scipy.signal

from ptjax import skeleton
# The reading half lives in keypoint_files; its public names are this module's too.
from ptjax.data.keypoint_files import (DEFAULT_CONFIDENCE_THRESHOLD, FORMATS, OPENPOSE_LAYOUTS,  # noqa: F401
                                       RawFrames, read_coco, read_openpose, read_raw)

SAVGOL_WINDOW = 5
SAVGOL_ORDER = 2
DEFAULT_MAX_MISSING = 0.5
DEFAULT_MAX_JUMP = 0.5


@dataclasses.dataclass(frozen=True)
class Keypoints:
    """A tracked person's 2D keypoints, ready for the estimator.

    keypoints2d: (T, 17, 2) normalised screen coordinates of the square frame (the estimator's input).
    pixels:      (T, 17, 2) the same in image pixels (after filling and smoothing).
    confidence:  (T, 17) detector confidence of each H36M-17 joint (a derived joint: its least confident source);
                 0 where the joint was filled in.
    filled:      (T, 17) True where the joint was missing and interpolated, or built by a fallback recipe.
    fallback:    (T, 17) int8: 0 = the joint's own recipe (`skeleton.mapping_matrix`), k > 0 = the k-th
                 alternative of `skeleton.head_fallbacks` (Nose and Head without a face keypoint), -1 = nothing
                 seen in that frame: interpolated over time.
    missing_frames: (T,) True where no tracked person was found (every joint of the frame is filled).
    image_size:  (width, height) in pixels; `image_size_source` is "file", "given" or "estimated".
    square_frame: (x0, y0, side) in pixels: the square mapped onto [-1, 1]^2 (normalised = (p - x0) / side * 2 - 1).
    """
    keypoints2d: np.ndarray
    pixels: np.ndarray
    confidence: np.ndarray
    filled: np.ndarray
    missing_frames: np.ndarray
    image_size: tuple[float, float]
    image_size_source: str
    square_frame: tuple[float, float, float]
    frame_names: tuple[str, ...]
    source_format: str
    source_layout: str
    fallback: np.ndarray | None = None

    @property
    def num_frames(self) -> int:
        return int(self.keypoints2d.shape[0])


# --- tracking, filling, smoothing, normalising ----------------------------------------------------------------------

def _valid(person: np.ndarray, threshold: float) -> np.ndarray:
    return np.isfinite(person).all(-1) & (person[:, 2] >= threshold)


def _box(person: np.ndarray, ok: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Centroid, box diagonal and box area of the valid joints."""
    pts = person[ok, :2]
    lo, hi = pts.min(0), pts.max(0)
    size = hi - lo
    return pts.mean(0), float(np.hypot(*size)), float(size[0] * size[1])


def track_person(people: list[list[np.ndarray]], threshold: float, person: int | None = None,
                 max_jump: float = DEFAULT_MAX_JUMP) -> tuple[np.ndarray, np.ndarray]:
    """Follow one person through the frames. Returns keypoints (T, J, 3) with NaN x, y (and 0 confidence) for
    joints that are missing or below `threshold`, and a (T,) mask of frames without the person."""
    num_joints = next((p.shape[0] for persons in people for p in persons), None)
    if num_joints is None:
        raise ValueError("no person detected in any frame")
    out = np.full((len(people), num_joints, 3), np.nan)
    out[..., 2] = 0.0
    missing = np.ones(len(people), bool)
    last_center, last_diag, last_t = None, None, None
    for t, persons in enumerate(people):
        candidates = []
        for i, p in enumerate(persons):
            ok = _valid(p, threshold)
            if ok.any():
                candidates.append((i, p, ok) + _box(p, ok))
        if not candidates:
            continue
        if last_center is None:
            if person is not None:
                chosen = [c for c in candidates if c[0] == person]
                if not chosen:
                    raise ValueError(f"person {person} not found in frame {t}, the first frame with detections "
                                     f"({len(persons)} detection(s) there)")
                pick = chosen[0]
            else:
                pick = max(candidates, key=lambda c: c[5])
        else:
            pick = min(candidates, key=lambda c: np.linalg.norm(c[3] - last_center))
            limit = max_jump * last_diag * (t - last_t) if last_diag > 0 else np.inf
            if np.linalg.norm(pick[3] - last_center) > limit:
                continue  # nobody near the tracked person: treat the frame as missing
        _, p, ok, center, diag, _ = pick
        out[t, ok] = p[ok]
        missing[t] = False
        # A single visible joint has no box: keep the last known size for the jump limit.
        last_center, last_t = center, t
        last_diag = diag if diag > 0 or last_diag is None else last_diag
    return out, missing


def fill_gaps(values: np.ndarray, missing: np.ndarray) -> np.ndarray:
    """Linear interpolation over time (axis 0) of each joint's missing frames; constant before the first and after
    the last valid frame. values (T, J, C), missing (T, J). Joints with no valid frame stay NaN."""
    out = np.array(values, np.float64, copy=True)
    t = np.arange(len(values))
    for j in range(values.shape[1]):
        ok = ~missing[:, j]
        if ok.all() or not ok.any():
            continue
        for c in range(values.shape[2]):
            out[~ok, j, c] = np.interp(t[~ok], t[ok], values[ok, j, c])
    return out


def smooth(values: np.ndarray, window: int = SAVGOL_WINDOW, order: int = SAVGOL_ORDER) -> np.ndarray:
    """Savitzky-Golay filter over time (axis 0), mode 'interp' as the original; unchanged when T < window."""
    if len(values) < window:
        return values
    return scipy.signal.savgol_filter(values, window, order, axis=0, mode="interp")


def square_frame(image_size: tuple[float, float]) -> tuple[float, float, float]:
    """PoseTriplet's square padding of a (width, height) image: (x0, y0, side), integer padding of the short side."""
    w, h = image_size
    if w > h:
        return 0.0, -float(int((w - h) * 0.5)), float(w)
    if h > w:
        return -float(int((h - w) * 0.5)), 0.0, float(h)
    return 0.0, 0.0, float(w)


def estimated_square_frame(pixels: np.ndarray) -> tuple[float, float, float]:
    """A square twice the size of the box around all keypoints, centred on it (the person spans about half of it)."""
    pts = pixels.reshape(-1, 2)
    pts = pts[np.isfinite(pts).all(-1)]
    lo, hi = pts.min(0), pts.max(0)
    side = 2.0 * float(max(hi - lo))
    if side <= 0:
        raise ValueError("cannot estimate the image frame from keypoints that all sit at one point; pass the image "
                         "size")
    center = 0.5 * (lo + hi)
    return float(center[0] - side / 2), float(center[1] - side / 2), side


def normalize(pixels: np.ndarray, frame: tuple[float, float, float]) -> np.ndarray:
    """Pixels -> normalised coordinates of the square `frame` (x0, y0, side): (p - origin) / side * 2 - 1."""
    x0, y0, side = frame
    return ((pixels - np.array([x0, y0])) / side * 2.0 - 1.0).astype(np.float32)


def _check_missing(missing17: np.ndarray, frames_missing: np.ndarray, layout: str, max_missing: float,
                   threshold: float) -> None:
    num_frames = len(missing17)
    if missing17.all():
        raise ValueError(f"no usable keypoints: every joint of all {num_frames} frames is missing, not finite or "
                         f"below the confidence threshold {threshold}")
    if frames_missing.mean() > max_missing:
        raise ValueError(f"the tracked person is missing in {int(frames_missing.sum())} of {num_frames} frames "
                         f"(more than the allowed {max_missing:.0%}); refusing to interpolate that much")
    fractions = missing17.mean(0)
    bad = np.flatnonzero(fractions > max_missing)
    if len(bad):
        w = skeleton.mapping_matrix(layout)
        names = skeleton.SOURCE_LAYOUTS[layout]
        parts = []
        for j in bad[:4]:
            sources = [names[s] for s in np.flatnonzero(w[j])]
            parts.append(f"{skeleton.JOINT_NAMES[j]} ({fractions[j]:.0%}, from {sources})")
        raise ValueError(f"joint(s) missing in too many of the {num_frames} frames (limit {max_missing:.0%}, "
                         f"confidence threshold {threshold}): {', '.join(parts)}")


def process(raw: RawFrames, image_size: tuple[float, float] | None = None,
            confidence_threshold: float = DEFAULT_CONFIDENCE_THRESHOLD, max_missing: float = DEFAULT_MAX_MISSING,
            smoothing: bool = True, person: int | None = None, max_jump: float = DEFAULT_MAX_JUMP,
            source_format: str = "") -> Keypoints:
    """Track, fill, smooth, convert and normalise raw detections (steps 1-5 of the module doc)."""
    if not 0.0 <= max_missing < 1.0:
        raise ValueError(f"max_missing must be in [0, 1), got {max_missing}")
    if not np.isfinite(confidence_threshold) or confidence_threshold < 0:
        raise ValueError(f"confidence_threshold must be a non-negative number, got {confidence_threshold}")
    if image_size is not None:
        if len(image_size) != 2 or not all(np.isfinite(v) and v > 0 for v in image_size):
            raise ValueError(f"image size must be two positive numbers (width, height), got {image_size}")
    if not raw.people:
        raise ValueError("no frames in the keypoint input")
    tracked, frames_missing = track_person(raw.people, confidence_threshold, person, max_jump)
    w = skeleton.mapping_matrix(raw.layout)
    missing_src = ~np.isfinite(tracked[..., :2]).all(-1)
    # An H36M-17 joint is missing where any source joint it is built from is missing ...
    missing17 = (missing_src[:, None, :] & (w != 0)[None]).any(-1)
    # ... except the Nose and Head, which fall back on the face and neck keypoints still seen.
    conf_src = np.where(missing_src, 0.0, tracked[..., 2])
    heads = _head_joints(tracked[..., :2], conf_src, missing_src, raw.layout)
    fallback = np.zeros(missing17.shape, np.int8)
    for j, (_, _, choice) in heads.items():
        missing17[:, j] = choice < 0
        fallback[:, j] = choice
    _check_missing(missing17, frames_missing, raw.layout, max_missing, confidence_threshold)

    # Source keypoints no frame sees (a nose never detected) only fed the Nose and Head, rebuilt above.
    used = np.flatnonzero((np.abs(w).sum(0) > 0) & ~missing_src.all(0))
    xy = np.where(missing_src[..., None], np.nan, tracked[..., :2])
    xy[:, used] = fill_gaps(xy[:, used], missing_src[:, used])
    xy[:, np.setdiff1d(np.arange(xy.shape[1]), used)] = 0.0
    if smoothing:
        xy = smooth(xy)
    pixels17, conf17 = skeleton.convert(xy, raw.layout, conf_src)
    for j, (values, conf, choice) in heads.items():
        values = fill_gaps(values[:, None], (choice < 0)[:, None])[:, 0]
        pixels17[:, j] = smooth(values[:, None])[:, 0] if smoothing else values
        conf17[:, j] = conf
    conf17 = np.where(missing17, 0.0, conf17)
    filled = missing17 | (fallback > 0)

    if raw.normalized:
        frame, size, size_source = (-1.0, -1.0, 2.0), (2.0, 2.0), "file"
    elif raw.image_size is not None or image_size is not None:
        size, size_source = (tuple(image_size), "given") if image_size is not None else (raw.image_size, "file")
        frame = square_frame(size)
    else:
        frame = estimated_square_frame(pixels17)
        size, size_source = (frame[2], frame[2]), "estimated"
        warnings.warn("image size unknown: normalising keypoints in a square frame estimated from the keypoints "
                      "(twice their extent); pass the image size for the original's framing", stacklevel=2)
    kp = normalize(pixels17, frame)
    if not np.isfinite(kp).all():
        raise ValueError("keypoints are not finite after gap filling; the input is unusable")
    return Keypoints(keypoints2d=kp, pixels=pixels17.astype(np.float32), confidence=conf17.astype(np.float32),
                     filled=filled, fallback=fallback, missing_frames=frames_missing,
                     image_size=tuple(float(v) for v in size),
                     image_size_source=size_source, square_frame=frame, frame_names=tuple(raw.names),
                     source_format=source_format, source_layout=raw.layout)


def _head_joints(xy: np.ndarray, conf: np.ndarray, missing: np.ndarray, layout: str
                 ) -> dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Nose and Head frame by frame from the first recipe whose keypoints are all seen (the joint's own, then
    `skeleton.head_fallbacks`): {joint: (values (T, 2), NaN where none; confidence (T,); choice (T,) int8, -1
    where none)}."""
    primary = skeleton.mapping_matrix(layout)
    seen = np.where(missing[..., None], 0.0, xy)
    out = {}
    for name, alts in skeleton.head_fallbacks(layout).items():
        j = skeleton.JOINT_INDEX[name]
        rows = [primary[j]] + [skeleton.recipe_matrix(layout, r) for _, r in alts]
        values = np.full((len(xy), 2), np.nan)
        confidence = np.zeros(len(xy))
        choice = np.full(len(xy), -1, np.int8)
        for k, row in enumerate(rows):
            uses = row != 0
            ok = ~(missing[:, uses]).any(-1) & (choice < 0)
            values[ok] = np.einsum("s,tsc->tc", row, seen[ok])
            confidence[ok] = conf[ok][:, uses].min(-1)
            choice[ok] = k
        out[j] = (values, confidence, choice)
    return out


def load_keypoints(path: str, fmt: str, image_size: tuple[float, float] | None = None, layout: str = "auto",
                   confidence_threshold: float = DEFAULT_CONFIDENCE_THRESHOLD,
                   max_missing: float = DEFAULT_MAX_MISSING, smoothing: bool = True, person: int | None = None,
                   max_jump: float = DEFAULT_MAX_JUMP) -> Keypoints:
    """Read `path` in format `fmt` ('coco', 'openpose', 'h36m') and return the tracked person's `Keypoints`."""
    raw = read_raw(path, fmt, layout, confidence_threshold)
    return process(raw, image_size=image_size, confidence_threshold=confidence_threshold, max_missing=max_missing,
                   smoothing=smoothing, person=person, max_jump=max_jump, source_format=fmt)
