"""Acclaim ASF/AMC (the CMU motion capture database's own format) -> joint positions.

An ASF file describes the skeleton: per bone its rest `direction` (a unit vector in world axes), `length` (in the
file's units: CMU's `:units length 0.45` means inches / 0.45), the `axis` angles of its local frame C and its
degrees of freedom; `:hierarchy` lists each parent's children. An AMC file holds, per frame, the root's translation
and rotation and each bone's dof values in degrees. A bone's world rotation is
`R_parent @ C @ M @ C^-1` (M: the frame's dof rotations in the axis order, as Euler angles in `C`'s order), and its
far end lies at `start + length * R @ direction`, where `start` is its parent's far end (the root's position for the
root's children). See the Acclaim documentation republished with the CMU database (mocap.cs.cmu.edu,
"ASF/AMC file format").
"""

from __future__ import annotations

import os

import numpy as np
from scipy.spatial.transform import Rotation

# CMU's files say `length 0.45`: lengths are inches / 0.45 (mocap.cs.cmu.edu FAQ) -> metres.
INCH = 0.0254


def _read_text(path: str, kind: str) -> str:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no {kind} file {path!r}")
    try:
        with open(path, encoding="utf-8", errors="strict") as f:
            return f.read()
    except UnicodeDecodeError as e:
        raise ValueError(f"{kind} file {path!r} is not text: {e}") from None


def _euler(order: str, angles_deg) -> np.ndarray:
    # ASF axis orders are extrinsic about world axes applied first to last ("XYZ": x, then y, then z).
    return Rotation.from_euler(order.lower(), angles_deg, degrees=True).as_matrix()


def parse_asf(path: str) -> dict:
    """Parse an ASF skeleton: {'length_unit': file units per inch, 'root_order': [...], 'root_axis': 'XYZ',
    'bones': {name: {'direction', 'length', 'C', 'dof'}}, 'children': {parent: [child, ...]}}."""
    text = _read_text(path, "ASF")
    lines = [ln.split("#", 1)[0].strip() for ln in text.splitlines()]
    asf = {"length_unit": 1.0, "root_order": ["TX", "TY", "TZ", "RX", "RY", "RZ"], "root_axis": "XYZ",
           "bones": {}, "children": {}}
    section, bone = None, None
    for n, ln in enumerate(lines, 1):
        if not ln:
            continue
        words = ln.split()
        if ln.startswith(":"):
            section = words[0][1:].lower()
            continue
        try:
            if section == "units" and words[0] == "length":
                asf["length_unit"] = float(words[1])
            elif section == "root" and words[0] == "order":
                asf["root_order"] = [w.upper() for w in words[1:]]
            elif section == "root" and words[0] == "axis":
                asf["root_axis"] = words[1].upper()
            elif section == "bonedata":
                if words[0] == "begin":
                    bone = {"dof": [], "C": np.eye(3)}
                elif words[0] == "end":
                    if "name" not in bone or "direction" not in bone or "length" not in bone:
                        raise ValueError("a bone lacks its name, direction or length")
                    asf["bones"][bone["name"]] = bone
                    bone = None
                elif words[0] == "name":
                    bone["name"] = words[1]
                elif words[0] == "direction":
                    d = np.array([float(w) for w in words[1:4]])
                    bone["direction"] = d / max(np.linalg.norm(d), 1e-12)
                elif words[0] == "length":
                    bone["length"] = float(words[1])
                elif words[0] == "axis":
                    bone["C"] = _euler(words[4], [float(w) for w in words[1:4]])
                elif words[0] == "dof":
                    bone["dof"] = [w.lower() for w in words[1:]]
            elif section == "hierarchy" and words[0] not in ("begin", "end"):
                asf["children"].setdefault(words[0], []).extend(words[1:])
        except (ValueError, IndexError, TypeError) as e:
            raise ValueError(f"ASF file {path!r}, line {n}: cannot read {ln!r} ({e})") from None
    if not asf["bones"] or "root" not in asf["children"]:
        raise ValueError(f"ASF file {path!r} has no bones or no hierarchy under 'root' (truncated?)")
    unknown = {c for cs in asf["children"].values() for c in cs} - set(asf["bones"])
    if unknown:
        raise ValueError(f"ASF file {path!r}: the hierarchy names bones it does not define: {sorted(unknown)}")
    return asf


def parse_amc(path: str, asf: dict) -> list[dict[str, np.ndarray]]:
    """Parse an AMC motion against its skeleton: a list of frames {bone: dof values}."""
    text = _read_text(path, "AMC")
    frames: list[dict] = []
    for n, ln in enumerate(text.splitlines(), 1):
        ln = ln.strip()
        if not ln or ln.startswith("#") or ln.startswith(":"):
            continue
        words = ln.split()
        if len(words) == 1 and words[0].isdigit():
            frames.append({})
            continue
        if not frames:
            raise ValueError(f"AMC file {path!r}, line {n}: values before the first frame number")
        name = words[0]
        expected = len(asf["root_order"]) if name == "root" else len(asf["bones"].get(name, {}).get("dof", []))
        if name != "root" and name not in asf["bones"]:
            raise ValueError(f"AMC file {path!r}, line {n}: bone {name!r} is not in the skeleton")
        try:
            values = np.array([float(w) for w in words[1:]])
        except ValueError:
            raise ValueError(f"AMC file {path!r}, line {n}: non-numeric value in {ln!r}") from None
        if len(values) != expected or not np.all(np.isfinite(values)):
            raise ValueError(f"AMC file {path!r}, line {n}: bone {name!r} needs {expected} finite values, "
                             f"found {len(values)}")
        frames[-1][name] = values
    if not frames:
        raise ValueError(f"AMC file {path!r} holds no frames")
    if not frames[-1] or "root" not in frames[-1]:
        raise ValueError(f"AMC file {path!r}: the last frame ({len(frames)}) is incomplete (truncated?)")
    return frames


def bone_end_positions(asf: dict, frames: list[dict]) -> tuple[np.ndarray, list[str]]:
    """World positions (T, 1 + bones, 3), in the file's axes and inches: the root, then each bone's far end."""
    t = len(frames)
    order = asf["root_order"]
    root = np.stack([f["root"] for f in frames])
    trans = np.stack([root[:, order.index(a)] if a in order else np.zeros(t) for a in ("TX", "TY", "TZ")], -1)
    rot_cols = [i for i, a in enumerate(order) if a.startswith("R")]
    root_rot = _euler("".join(order[i][1] for i in rot_cols), root[:, rot_cols])
    scale = INCH / asf["length_unit"]   # file units -> metres (CMU: 0.45 per inch... see INCH)
    names, pos = ["root"], {"root": trans}
    rot = {"root": root_rot}

    def visit(parent: str):
        for child in asf["children"].get(parent, []):
            bone = asf["bones"][child]
            m = np.broadcast_to(np.eye(3), (t, 3, 3))
            if bone["dof"]:
                values = np.stack([f.get(child, np.zeros(len(bone["dof"]))) for f in frames])
                axes = "".join(d[1] for d in bone["dof"] if d.startswith("r"))
                if axes:
                    m = _euler(axes, values[:, [i for i, d in enumerate(bone["dof"]) if d.startswith("r")]])
            c = bone["C"]
            rot[child] = rot[parent] @ c @ m @ c.T
            pos[child] = pos[parent] + bone["length"] * np.einsum("tij,j->ti", rot[child], bone["direction"])
            names.append(child)
            visit(child)

    visit("root")
    return np.stack([pos[n] for n in names], 1) * scale, names
