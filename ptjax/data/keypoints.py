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
import glob
import json
import os
import re
import warnings

import numpy as np
import scipy.signal

from ptjax import skeleton

FORMATS = ("h36m", "coco", "openpose")
OPENPOSE_LAYOUTS = ("body25", "body25b")
SAVGOL_WINDOW = 5
SAVGOL_ORDER = 2
DEFAULT_CONFIDENCE_THRESHOLD = 0.2
DEFAULT_MAX_MISSING = 0.5
DEFAULT_MAX_JUMP = 0.5
_DETECTION_LIST_KEYS = ("annotations", "people", "instances", "predictions")


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


@dataclasses.dataclass
class RawFrames:
    """Detections per frame in a source layout: people[t] = list of (J, 3) arrays (x, y, confidence)."""
    people: list[list[np.ndarray]]
    names: list[str]
    layout: str
    image_size: tuple[float, float] | None = None
    normalized: bool = False


# --- reading --------------------------------------------------------------------------------------------------------

def _read_json(path: str):
    try:
        with open(path) as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e.msg} at line {e.lineno}, column {e.colno}); "
                         "is the file truncated?") from e
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not a text JSON file ({e})") from e


def _json_files(folder: str) -> list[str]:
    files = sorted(glob.glob(os.path.join(folder, "*.json")))
    if not files:
        raise ValueError(f"keypoint folder {folder!r} has no .json files")
    return files


def _last_number(name: str) -> int | None:
    numbers = re.findall(r"\d+", os.path.splitext(os.path.basename(str(name)))[0])
    return int(numbers[-1]) if numbers else None


def _frame_order(names: list) -> tuple[list[int], int]:
    """Frame index of each name and the number of frames: by the last number in the names when every name has a
    distinct one (skipped numbers become missing frames), else by sorted order."""
    if all(isinstance(n, (int, np.integer)) for n in names):
        numbers = [int(n) for n in names]
    else:
        numbers = [_last_number(n) for n in names]
    if all(n is not None for n in numbers) and len(set(numbers)) == len(numbers):
        first = min(numbers)
        return [n - first for n in numbers], max(numbers) - first + 1
    order = sorted(range(len(names)), key=lambda i: str(names[i]))
    index = [0] * len(names)
    for rank, i in enumerate(order):
        index[i] = rank
    return index, len(names)


def _person_array(values, num_joints: int, where: str) -> np.ndarray:
    """Flat (x, y, c) * J or (J, 2|3) nested -> (J, 3) float array; ValueError naming the joint count otherwise."""
    try:
        arr = np.asarray(values, np.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{where}: keypoints are not numbers ({e})") from e
    if arr.ndim == 1:
        if arr.size % 3 != 0:
            raise ValueError(f"{where}: {arr.size} keypoint numbers is not a multiple of 3 (x, y, confidence)")
        arr = arr.reshape(-1, 3)
    if arr.ndim != 2 or arr.shape[1] not in (2, 3):
        raise ValueError(f"{where}: keypoints have shape {arr.shape}; expected (J, 2|3) or a flat (x, y, c) list")
    if arr.shape[0] != num_joints:
        raise ValueError(f"{where}: {arr.shape[0]} keypoints, expected {num_joints}")
    if arr.shape[1] == 2:
        arr = np.concatenate([arr, np.ones((num_joints, 1))], axis=1)
    return arr


def _detections(content, where: str) -> list:
    if isinstance(content, dict):
        for key in _DETECTION_LIST_KEYS:
            if key in content:
                content = content[key]
                break
        else:
            if "keypoints" in content:
                content = [content]
            else:
                raise ValueError(f"{where}: expected a list of detections or a dict with one of "
                                 f"{list(_DETECTION_LIST_KEYS)}, got keys {sorted(content)[:8]}")
    if not isinstance(content, list):
        raise ValueError(f"{where}: expected a list of detections, got {type(content).__name__}")
    for i, det in enumerate(content):
        if not isinstance(det, dict) or "keypoints" not in det:
            raise ValueError(f"{where}: detection {i} has no 'keypoints'")
    return content


def _assemble(frame_people: list[tuple[object, list[np.ndarray]]], layout: str,
              image_size=None) -> RawFrames:
    index, count = _frame_order([name for name, _ in frame_people])
    people: list[list[np.ndarray]] = [[] for _ in range(count)]
    names = [""] * count
    for (name, persons), i in zip(frame_people, index):
        people[i] = persons
        names[i] = str(name)
    return RawFrames(people=people, names=names, layout=layout, image_size=image_size)


def read_coco(path: str) -> RawFrames:
    """COCO-17 keypoints from a folder of per-frame JSON files, one JSON file, or an npz (see module doc)."""
    n = len(skeleton.COCO17_NAMES)
    if os.path.isdir(path):
        frames = []
        for file in _json_files(path):
            dets = _detections(_read_json(file), file)
            frames.append((os.path.basename(file),
                           [_person_array(d["keypoints"], n, f"{file} detection {i}") for i, d in enumerate(dets)]))
        return _assemble(frames, "coco")
    if path.endswith(".npz"):
        return _read_npz(path, "coco")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"keypoint file or folder {path!r} not found")
    content = _read_json(path)
    images = {}
    if isinstance(content, dict) and "images" in content:
        images = {img.get("id"): img for img in content["images"] if isinstance(img, dict)}
    dets = _detections(content, path)
    if not dets:
        raise ValueError(f"{path}: no detections")
    by_frame: dict[object, list[np.ndarray]] = {}
    for i, det in enumerate(dets):
        if "image_id" not in det:
            raise ValueError(f"{path}: detection {i} has no 'image_id' (needed to order frames in a single file)")
        by_frame.setdefault(det["image_id"], []).append(
            _person_array(det["keypoints"], n, f"{path} detection {i} (image {det['image_id']})"))
    image_size = None
    sizes = {(img.get("width"), img.get("height")) for img in images.values()}
    if len(sizes) == 1 and None not in next(iter(sizes)):
        image_size = tuple(float(v) for v in next(iter(sizes)))
    frames = list(by_frame.items())
    if images:
        # COCO annotations: order by file name when the images have them.
        names = {k: images[k].get("file_name", k) if k in images else k for k in by_frame}
        frames = [(names[k], v) for k, v in by_frame.items()]
    return _assemble(frames, "coco", image_size)


def _openpose_layout(people: list[list[np.ndarray]], threshold: float) -> str:
    """BODY_25 vs BODY_25B, by majority over every detection that shows the joints a test needs. BODY_25 places
    joint 1 (Neck) midway between joints 2 and 5 (the shoulders) and joint 8 (MidHip) midway between 9 and 12 (the
    hips); in BODY_25B those are eyes, a shoulder, an elbow, a wrist and a hip, nowhere near midway. Undetected
    joints (below the threshold, or written as 0, 0) take no part, so a nose never seen does not matter."""
    votes = {"body25": 0, "body25b": 0}
    for persons in people:
        for p in persons:
            ok = (p[:, 2] >= threshold) & np.isfinite(p).all(-1) & (np.abs(p[:, :2]).sum(-1) > 0)
            for middle, a, b in ((1, 2, 5), (8, 9, 12)):
                if not (ok[middle] and ok[a] and ok[b]):
                    continue
                span = np.linalg.norm(p[a, :2] - p[b, :2])
                if span <= 0:
                    continue
                off = np.linalg.norm(p[middle, :2] - 0.5 * (p[a, :2] + p[b, :2])) / span
                votes["body25" if off < 0.2 else "body25b"] += 1
    if votes["body25"] == votes["body25b"]:
        raise ValueError("cannot tell OpenPose BODY_25 from BODY_25B in these files (no frame shows the neck or "
                         "mid-hip with the joints beside them); pass the layout explicitly (--layout body25 or "
                         "body25b)")
    return max(votes, key=votes.get)


def read_openpose(path: str, layout: str = "auto", confidence_threshold: float = DEFAULT_CONFIDENCE_THRESHOLD
                  ) -> RawFrames:
    """A folder of OpenPose JSON files (one per frame), BODY_25 or BODY_25B."""
    if not os.path.isdir(path):
        raise ValueError(f"OpenPose input must be a folder of per-frame JSON files; {path!r} is not a folder")
    if layout not in ("auto",) + OPENPOSE_LAYOUTS:
        raise ValueError(f"OpenPose layout must be 'auto', 'body25' or 'body25b', got {layout!r}")
    frames = []
    for file in _json_files(path):
        content = _read_json(file)
        if not isinstance(content, dict) or "people" not in content or not isinstance(content["people"], list):
            raise ValueError(f"{file}: not an OpenPose file (expected a dict with a 'people' list)")
        persons = []
        for i, person in enumerate(content["people"]):
            if not isinstance(person, dict) or "pose_keypoints_2d" not in person:
                raise ValueError(f"{file}: person {i} has no 'pose_keypoints_2d'")
            arr = np.asarray(person["pose_keypoints_2d"], np.float64).reshape(-1)
            if arr.size == 0:
                continue  # OpenPose writes an empty list for a body-less face/hand detection
            if arr.size != 75:
                raise ValueError(f"{file}: person {i} has {arr.size} pose_keypoints_2d numbers; BODY_25 and "
                                 "BODY_25B have 25 keypoints (75 numbers: x, y, confidence)")
            persons.append(arr.reshape(25, 3))
        frames.append((os.path.basename(file), persons))
    raw = _assemble(frames, "body25")
    raw.layout = _openpose_layout(raw.people, confidence_threshold) if layout == "auto" else layout
    return raw


def _read_npz(path: str, layout: str) -> RawFrames:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"keypoint file {path!r} not found")
    try:
        with np.load(path, allow_pickle=False) as npz:
            data = {k: npz[k] for k in npz.files}
    except Exception as e:  # zipfile/OSError/ValueError: a truncated or foreign file
        raise ValueError(f"{path}: not a readable npz ({type(e).__name__}: {e})") from e
    key = "keypoints" if "keypoints" in data else "kpts" if "kpts" in data else None
    if key is None:
        raise ValueError(f"{path}: no 'keypoints' array (has {sorted(data)})")
    kp = np.asarray(data[key], np.float64)
    num = len(skeleton.SOURCE_LAYOUTS[layout])
    if kp.ndim != 3 or kp.shape[1] != num or kp.shape[2] not in (2, 3):
        raise ValueError(f"{path}: '{key}' has shape {kp.shape}; expected (T, {num}, 2|3) in {layout} order")
    if len(kp) == 0:
        raise ValueError(f"{path}: '{key}' has no frames")
    if kp.shape[2] == 2:
        conf = np.asarray(data["confidence"], np.float64) if "confidence" in data else np.ones(kp.shape[:2])
        if conf.shape != kp.shape[:2]:
            raise ValueError(f"{path}: confidence shape {conf.shape} does not match keypoints {kp.shape[:2]}")
        kp = np.concatenate([kp, conf[..., None]], axis=-1)
    image_size = None
    if "image_size" in data:
        image_size = tuple(float(v) for v in np.asarray(data["image_size"]).reshape(-1)[:2])
    elif "image_width" in data and "image_height" in data:
        image_size = (float(data["image_width"]), float(data["image_height"]))
    normalized = bool(np.asarray(data.get("normalized", False)))
    people = [[frame] for frame in kp]
    return RawFrames(people=people, names=[str(i) for i in range(len(kp))], layout=layout,
                      image_size=image_size, normalized=normalized)


def read_raw(path: str, fmt: str, layout: str = "auto",
             confidence_threshold: float = DEFAULT_CONFIDENCE_THRESHOLD) -> RawFrames:
    if fmt not in FORMATS:
        raise ValueError(f"unknown keypoint format {fmt!r}; expected one of {FORMATS}")
    if not os.path.exists(path):
        raise FileNotFoundError(f"keypoint file or folder {path!r} not found")
    if fmt == "coco":
        return read_coco(path)
    if fmt == "openpose":
        return read_openpose(path, layout, confidence_threshold)
    if not path.endswith(".npz"):
        raise ValueError(f"format 'h36m' reads an .npz file with a 'keypoints' (T, 17, 2|3) array; got {path!r}")
    return _read_npz(path, "h36m")


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
