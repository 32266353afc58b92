"""Reading 2D keypoint files into per-frame detections (`RawFrames`): COCO-17 JSON (a folder of per-frame files or
one COCO-results / COCO-annotations file), OpenPose BODY_25 / BODY_25B folders, and `.npz` arrays. The formats are
described in `ptjax.data.keypoints`, which tracks, fills, smooths and normalises what is read here."""

from __future__ import annotations

import dataclasses
import glob
import json
import os
import re

import numpy as np

from ptjax import skeleton

FORMATS = ("h36m", "coco", "openpose")
OPENPOSE_LAYOUTS = ("body25", "body25b")
DEFAULT_CONFIDENCE_THRESHOLD = 0.2
_DETECTION_LIST_KEYS = ("annotations", "people", "instances", "predictions")


@dataclasses.dataclass
class RawFrames:
    """Detections per frame in a source layout: people[t] = list of (J, 3) arrays (x, y, confidence)."""
    people: list[list[np.ndarray]]
    names: list[str]
    layout: str
    image_size: tuple[float, float] | None = None
    normalized: bool = False


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
