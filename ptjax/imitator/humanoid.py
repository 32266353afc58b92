"""An MJX humanoid on the H36M-17 skeleton, generated for a given body shape.

Bodies sit at H36M joints: the pelvis (free root) at Hip; thighs, shins and feet at RHip/LHip, knees and ankles;
the torso at Spine (a 3-DoF lower-back joint carrying the Thorax and both shoulders rigidly, like a chest with fixed
clavicles); the neck at Thorax and the head at Nose; upper arms at the shoulders and forearms at the elbows (hands
are rigid on the forearms: H36M has no hand keypoint, so a wrist joint would be unobservable). Every H36M joint has
a site, so `site_xpos[h36m_site_ids]` are the humanoid's H36M-17 joints.

Degrees of freedom: 3 hinges at hips, lower back, neck, head and shoulders; 1 hinge at knees and elbows (flexion
about the lateral axis); 2 at the ankles (pitch, roll) -- 29 in all (qpos 7 + 29 = 36). Hinges of one body compose
intrinsically in the listed order (MuJoCo's rule). The order places each Euler singularity (the middle hinge at
+-90 degrees) where motion rarely goes: y-x-z (flexion, abduction, twist) for hips, spine, neck and head locks only
at 90 degrees of abduction or side bend, where x-y-z would lock at 90 degrees of hip flexion (every crouch and
kick); shoulders use x-y-z (locking with the arm straight forward or back) since y-x-z would lock in a T-pose.
At qpos = 0 the body stands upright facing +x (world Z-up) with arms hanging down. Joint limits are anatomical
ranges (see `JOINT_LIMITS`). Masses follow segment fractions of total body mass from biomechanics tables (de Leva
1996, after Zatsiorsky-Seluyanov), 70 kg by default.

Actuation: position servos (`<position kp kv forcerange>`, MuJoCo's implicit PD under the `implicitfast`
integrator) with gains and torque limits per joint group in PoseTriplet's ranges (reference §3.2: its
`joint_params` times its 0.5 multiplier), and an optional 6-D residual root force (RFC) applied through
`qfrc_applied` of the free joint by the environment. The control rate is 30 Hz as in the original.
"""

from __future__ import annotations

import dataclasses
import functools

import mujoco
import numpy as np

from ptjax import skeleton

J = skeleton.JOINT_INDEX

# (body name, parent body, H36M joint at its origin, hinge axes ("x"/"y"/"z"), actuator group)
BODIES: tuple[tuple[str, str | None, int, str, str], ...] = (
    ("pelvis", None, J["Hip"], "", "root"),
    ("r_thigh", "pelvis", J["RHip"], "yxz", "hip"),
    ("r_shin", "r_thigh", J["RKnee"], "y", "knee"),
    ("r_foot", "r_shin", J["RAnkle"], "yx", "ankle"),
    ("l_thigh", "pelvis", J["LHip"], "yxz", "hip"),
    ("l_shin", "l_thigh", J["LKnee"], "y", "knee"),
    ("l_foot", "l_shin", J["LAnkle"], "yx", "ankle"),
    ("torso", "pelvis", J["Spine"], "yxz", "spine"),
    ("neck", "torso", J["Thorax"], "yxz", "neck"),
    ("head", "neck", J["Nose"], "yxz", "head"),
    ("l_upperarm", "torso", J["LShoulder"], "xyz", "shoulder"),
    ("l_forearm", "l_upperarm", J["LElbow"], "y", "elbow"),
    ("r_upperarm", "torso", J["RShoulder"], "xyz", "shoulder"),
    ("r_forearm", "r_upperarm", J["RElbow"], "y", "elbow"),
)
BODY_OF_JOINT = {j: name for name, _, j, _, _ in BODIES}
# H36M joints that are not body origins, and the body that carries them.
LEAF_SITES = {J["Head"]: "head", J["LWrist"]: "l_forearm", J["RWrist"]: "r_forearm"}
# For each H36M joint, the body it belongs to rigidly (its own body, or the carrying body for leaf sites).
JOINT_BODY = {**BODY_OF_JOINT, **LEAF_SITES}

# Anatomical ranges in degrees, per (group, side-agnostic axis). The x (abduction) limits of hips and shoulders are
# mirrored for the right side, whose outward direction is -y.
_LIMITS_DEG = {
    ("hip", "x"): (-30.0, 50.0),       # left hip: + = abduction (leg out to +y)
    ("hip", "y"): (-140.0, 30.0),      # - = flexion (leg forward); a tuck reaches ~135 degrees
    ("hip", "z"): (-45.0, 45.0),
    ("knee", "y"): (-2.0, 150.0),      # + = flexion (shin backward)
    ("ankle", "y"): (-45.0, 45.0),
    ("ankle", "x"): (-30.0, 30.0),
    ("spine", "x"): (-50.0, 50.0),     # one joint stands for the whole lumbar + thoracic side bend
    ("spine", "y"): (-30.0, 80.0),     # + = bending forward
    ("spine", "z"): (-45.0, 45.0),
    ("neck", "x"): (-45.0, 45.0),
    ("neck", "y"): (-50.0, 60.0),
    ("neck", "z"): (-70.0, 70.0),
    ("head", "x"): (-30.0, 30.0),
    ("head", "y"): (-40.0, 40.0),
    ("head", "z"): (-50.0, 50.0),
    # Shoulder swing reaches every direction but behind-and-up; an Euler box cannot describe that cone, so the
    # swing hinges span the full circle (arms pass overhead through either hinge) and only the twist is bounded.
    ("shoulder", "x"): (-180.0, 180.0),  # left shoulder: + = abduction (arm out to +y and up)
    ("shoulder", "y"): (-180.0, 180.0),  # - = flexion (arm forward and up)
    ("shoulder", "z"): (-120.0, 120.0),  # humeral rotation plus the twist Euler swing adds
    ("elbow", "y"): (-155.0, 2.0),      # - = flexion (forearm forward)
}

# PD gains and torque limits per group: (kp [N m/rad], kv [N m s/rad], torque limit [N m]). Torque limits and the
# upper-body gains are PoseTriplet's joint_params (helix_3) times its 0.5 multiplier (reference §3.2). Leg gains are
# raised so that PD alone holds the standing body: the ankles carry an inverted pendulum of m g h ~ 690 N m/rad
# (70 kg, centre of mass ~1 m up), the knees ~300 N m/rad; PoseTriplet relied on the policy and residual forces.
GAINS = {
    "hip": (500.0, 50.0, 600.0), "knee": (500.0, 50.0, 450.0), "ankle": (900.0, 90.0, 300.0),
    "spine": (500.0, 50.0, 200.0), "neck": (50.0, 5.0, 50.0), "head": (50.0, 5.0, 50.0),
    "shoulder": (150.0, 25.0, 50.0), "elbow": (150.0, 15.0, 60.0),
}

# Reflected motor inertia per group [kg m^2]. The position servo's spring is explicit in time, so it needs
# dt < 2 / sqrt(kp / I): light segments under stiff servos (the foot under the ankle) need armature to allow a
# 1/90 s step.
ARMATURE = {"ankle": 0.1}
DEFAULT_ARMATURE = 0.05

# Segment mass fractions of total body mass (de Leva 1996, male): trunk split into pelvis, abdomen+thorax.
MASS_FRACTIONS = {
    "pelvis": 0.142, "torso": 0.355, "neck": 0.015, "head": 0.066,
    "thigh": 0.100, "shin": 0.0465, "foot": 0.0145, "upperarm": 0.028, "forearm": 0.016, "hand": 0.006,
}

ANKLE_HEIGHT = 0.055  # ankle joint centre above the sole when standing, metres (DeepMimic clips: 0.053-0.059)


def _is_right(body: str) -> bool:
    return body.startswith("r_")


def joint_range_deg(body: str, group: str, axis: str) -> tuple[float, float]:
    lo, hi = _LIMITS_DEG[(group, axis)]
    if _is_right(body) and axis in ("x", "z") and group in ("hip", "shoulder", "ankle"):
        lo, hi = -hi, -lo  # mirror about the sagittal plane
    if axis in ("x", "z") and group in ("spine", "neck", "head"):
        lo, hi = -max(-lo, hi), max(-lo, hi)
    return lo, hi


@dataclasses.dataclass(frozen=True)
class HumanoidShape:
    """Rest geometry: `offsets[j]` is joint j's position relative to its parent joint, in the rest (world-aligned)
    frame, metres; offsets[0] is unused. Bones of rigid parts carry their rest directions; limbs hang down."""
    offsets: np.ndarray  # (17, 3)
    ankle_height: float = ANKLE_HEIGHT
    total_mass: float = 70.0

    def __post_init__(self):
        off = np.asarray(self.offsets, np.float64)
        if off.shape != (17, 3) or not np.all(np.isfinite(off)):
            raise ValueError(f"shape offsets must be a finite (17, 3) array, got {off.shape}")
        lengths = np.linalg.norm(off[1:], axis=-1)
        if np.any(lengths < 0.02):
            bad = [skeleton.JOINT_NAMES[i + 1] for i in np.flatnonzero(lengths < 0.02)]
            raise ValueError(f"bones ending at {bad} are shorter than 2 cm: not a plausible body")
        if not 0.01 <= self.ankle_height <= 0.2:
            raise ValueError(f"ankle_height {self.ankle_height} m is outside [0.01, 0.2]")
        if not 20.0 <= self.total_mass <= 200.0:
            raise ValueError(f"total_mass {self.total_mass} kg is outside [20, 200]")
        object.__setattr__(self, "offsets", off)

    @property
    def bone_lengths(self) -> np.ndarray:
        return np.linalg.norm(self.offsets[[c for _, c in skeleton.BONES]], axis=-1)

    def rest_joints(self) -> np.ndarray:
        """(17, 3) joint positions at qpos = 0 with the pelvis at the origin."""
        pos = np.zeros((17, 3))
        for j in range(1, 17):
            pos[j] = pos[skeleton.PARENTS[j]] + self.offsets[j]
        return pos


# Rest directions of the rigid parts, estimated from the bundled clips' median posture (see `shape_from_motion`):
# shoulders sit slightly above and behind the thorax; the nose is forward of the neck line.
_DEFAULT_DIRECTIONS = {
    J["RHip"]: (0.0, -1.0, 0.0), J["LHip"]: (0.0, 1.0, 0.0), J["Spine"]: (0.0, 0.0, 1.0),
    J["Thorax"]: (0.0, 0.0, 1.0), J["Nose"]: (0.5, 0.0, 0.866), J["Head"]: (-0.1, 0.0, 0.995),
    J["LShoulder"]: (-0.13, 0.98, 0.10), J["RShoulder"]: (-0.13, -0.98, 0.10),
}


def shape_from_bone_lengths(bone_lengths, ankle_height: float = ANKLE_HEIGHT, total_mass: float = 70.0,
                            directions: dict[int, tuple[float, float, float]] | None = None) -> HumanoidShape:
    """Build a body for a (16,) bone-length vector in `skeleton.BONES` order (per subject or per clip)."""
    lengths = np.asarray(bone_lengths, np.float64)
    if lengths.shape != (16,) or not np.all(np.isfinite(lengths)):
        raise ValueError(f"bone_lengths must be a finite (16,) vector in skeleton.BONES order, got {lengths.shape}")
    if np.any(lengths < 0.02):
        bad = [f"{skeleton.JOINT_NAMES[p]}-{skeleton.JOINT_NAMES[c]}"
               for (p, c), l in zip(skeleton.BONES, lengths) if l < 0.02]
        raise ValueError(f"zero-length or too short bones (< 2 cm): {bad}")
    dirs = {**_DEFAULT_DIRECTIONS, **(directions or {})}
    offsets = np.zeros((17, 3))
    for (_, child), length in zip(skeleton.BONES, lengths):
        d = np.asarray(dirs.get(child, (0.0, 0.0, -1.0)), np.float64)
        offsets[child] = d / np.linalg.norm(d) * length
    return HumanoidShape(offsets=offsets, ankle_height=ankle_height, total_mass=total_mass)


def _frame(primary_z: np.ndarray, secondary_y: np.ndarray) -> np.ndarray:
    """Rotation (..., 3, 3) whose z axis is `primary_z` and whose y axis is `secondary_y` made orthogonal to it."""
    z = primary_z / np.linalg.norm(primary_z, axis=-1, keepdims=True)
    y = secondary_y - np.sum(secondary_y * z, -1, keepdims=True) * z
    y = y / np.linalg.norm(y, axis=-1, keepdims=True)
    x = np.cross(y, z)
    return np.stack([x, y, z], -1)


def shape_from_motion(joints: np.ndarray, ankle_height: float | None = None, total_mass: float = 70.0
                      ) -> HumanoidShape:
    """Estimate a body from motion (T, 17, 3): median bone lengths, and the rigid parts' rest directions (hips in
    the pelvis frame, shoulders, neck and head in the torso frame) as median directions over the frames."""
    joints = skeleton.check_joints(joints, name="motion joints").reshape(-1, 17, 3).astype(np.float64)
    lengths = np.median(skeleton.bone_lengths(joints), axis=0)
    pelvis = _frame(joints[:, J["Spine"]] - joints[:, J["Hip"]], joints[:, J["LHip"]] - joints[:, J["RHip"]])
    torso = _frame(joints[:, J["Thorax"]] - joints[:, J["Spine"]],
                   joints[:, J["LShoulder"]] - joints[:, J["RShoulder"]])
    directions = {}
    for child, frame, parent in ((J["RHip"], pelvis, J["Hip"]), (J["LHip"], pelvis, J["Hip"]),
                                 (J["LShoulder"], torso, J["Thorax"]), (J["RShoulder"], torso, J["Thorax"]),
                                 (J["Nose"], torso, J["Thorax"]), (J["Head"], torso, J["Nose"])):
        local = np.einsum("tji,tj->ti", frame, joints[:, child] - joints[:, parent])
        local /= np.linalg.norm(local, axis=-1, keepdims=True)
        d = np.median(local, axis=0)
        directions[child] = tuple(d / np.linalg.norm(d))
    if ankle_height is None:
        # While standing (pelvis high), the lower ankle is near the floor: its low percentile approximates the
        # ankle's height above the sole.
        lower_ankle = joints[:, [J["RAnkle"], J["LAnkle"]], 2].min(-1)
        upright = joints[:, J["Hip"], 2] - lower_ankle > 0.6
        sample = lower_ankle[upright] if upright.any() else lower_ankle
        ankle_height = float(np.clip(np.percentile(sample, 10), 0.03, 0.15))
    return shape_from_bone_lengths(lengths, ankle_height=ankle_height, total_mass=total_mass, directions=directions)


@functools.cache
def default_shape() -> HumanoidShape:
    """The body of the bundled clips (they share one skeleton)."""
    from ptjax.data import load_clips
    joints = np.concatenate([m.joints for m in load_clips().values()])
    return shape_from_motion(joints)


@dataclasses.dataclass(frozen=True)
class SimConfig:
    """Simulation settings, chosen for MJX speed and measured for stability (benchmarks/physics.py).

    Implicit PD (position servos under `implicitfast`) stays stable at a 1/90 s step, so a 30 Hz control step is
    3 physics steps (PoseTriplet used 15 steps of 1/450 s with explicit stable PD). Measured: Newton with 3
    iterations holds a standing body and survives falls from any tilt; CG with few iterations let the standing body
    sink. At 1/60 s (PHC's setting) C MuJoCo is stable but MJX drifts away from it within 0.2 s of standing, while
    at 1/90 s MJX and C agree to 0.2 mm over 600 steps. Constraint rows
    dominate MJX's step on CPU: the single-axis knees and elbows keep their limits in the simulation (no
    hyperextension under load) while the 3-DoF joints are kept in range by clipping PD targets
    (`joint_limits="hinge1"`; "all" enforces every range in the solver). Feet and hands have friction; the other
    floor contacts (a fall ends the episode) are frictionless single rows.
    """
    timestep: float = 1.0 / 90.0
    substeps: int = 3
    solver: str = "newton"
    iterations: int = 3
    ls_iterations: int = 5
    joint_limits: str = "hinge1"  # "all" | "hinge1" | "none"
    # Bodies besides the feet that touch the floor with friction, and those that touch it without, so that a fall
    # is a fall.
    friction_contacts: tuple[str, ...] = ("l_forearm", "r_forearm")
    frictionless_contacts: tuple[str, ...] = ("pelvis", "torso", "head", "l_shin", "r_shin")

    def __post_init__(self):
        if self.joint_limits not in ("all", "hinge1", "none"):
            raise ValueError(f"joint_limits must be 'all', 'hinge1' or 'none', got {self.joint_limits!r}")
        if self.solver not in ("cg", "newton"):
            raise ValueError(f"solver must be 'cg' or 'newton', got {self.solver!r}")
        if not (0 < self.timestep <= 0.02) or self.substeps < 1:
            raise ValueError(f"timestep must be in (0, 0.02] s and substeps >= 1, got {self.timestep}, "
                             f"{self.substeps}")

    @property
    def control_dt(self) -> float:
        return self.timestep * self.substeps


def _fmt(v) -> str:
    return " ".join(f"{x:.6g}" for x in np.ravel(v))


def _capsule(name: str, start, end, size: float, mass: float) -> str:
    return (f'<geom name="{name}" type="capsule" fromto="{start} {end}" size="{size:g}" mass="{mass:.4g}"/>')


def _limb_geoms(name: str, shape: HumanoidShape) -> list[str]:
    """Geoms of a thigh, shin, foot, upper arm or forearm (with its hand), along the bone to the next joint."""
    off, m, mf = shape.offsets, shape.total_mass, MASS_FRACTIONS
    side = "R" if _is_right(name) else "L"
    if name.endswith("foot"):
        half_h = 0.025
        return [f'<geom name="{name}" type="box" size="0.1 0.045 {half_h}" '
                f'pos="0.045 0 {-(shape.ankle_height - half_h):.4g}" mass="{m * mf["foot"]:.4g}"/>']
    # (the joint the bone ends at, the share of the bone the capsule spans, its radius, the mass fraction's key)
    end_joint, reach, radius, part = {"thigh": ("Knee", 0.95, 0.065, "thigh"), "shin": ("Ankle", 0.92, 0.05, "shin"),
                                      "upperarm": ("Elbow", 0.92, 0.045, "upperarm"),
                                      "forearm": ("Wrist", 0.9, 0.04, "forearm")}[name[2:]]
    bone = off[J[side + end_joint]]
    out = [_capsule(name, "0 0 0", _fmt(bone * reach), radius, m * mf[part])]
    if part == "forearm":
        out.append(f'<geom name="{name[0]}_hand" type="sphere" pos="{_fmt(bone * 1.1)}" size="0.045" '
                   f'mass="{m * mf["hand"]:.4g}"/>')
    return out


def _geoms(name: str, shape: HumanoidShape) -> list[str]:
    """The collision/mass geoms of body `name`, in its frame (origin at its H36M joint)."""
    off, m, mf = shape.offsets, shape.total_mass, MASS_FRACTIONS
    if name == "pelvis":
        return [_capsule("pelvis", _fmt(off[J["RHip"]]), _fmt(off[J["LHip"]]), 0.09, m * mf["pelvis"])]
    if name == "torso":
        thorax = off[J["Thorax"]]
        return [_capsule("torso", "0 0 0.02", _fmt(thorax * 0.9), 0.11, m * mf["torso"] * 0.8),
                _capsule("shoulders", _fmt(thorax + off[J["RShoulder"]] * 0.7),
                         _fmt(thorax + off[J["LShoulder"]] * 0.7), 0.06, m * mf["torso"] * 0.2)]
    if name == "neck":
        return [_capsule("neck", "0 0 0", _fmt(off[J["Nose"]] * 0.6), 0.05, m * mf["neck"])]
    if name == "head":
        return [f'<geom name="head" type="sphere" pos="{_fmt(off[J["Head"]] * 0.45)}" size="0.1" '
                f'mass="{m * mf["head"]:.4g}"/>']
    return _limb_geoms(name, shape)


def _body_xml(name: str, depth: int, shape: HumanoidShape, rest: np.ndarray) -> list[str]:
    """MJCF lines of body `name` and, nested in it, its children (BODIES)."""
    spec = {body: (parent, j, axes, group) for body, parent, j, axes, group in BODIES}
    parent, j, axes, group = spec[name]
    pad = "  " * depth
    # A body's origin relative to its parent body's origin (the shoulders hang from the torso, whose origin is
    # the Spine joint, not their H36M parent, the Thorax).
    pos = np.array([0.0, 0.0, 1.0]) if parent is None else rest[j] - rest[spec[parent][1]]
    lines = [f'{pad}<body name="{name}" pos="{_fmt(pos)}">']
    if parent is None:
        lines.append(f'{pad}  <freejoint name="root"/>')
    for axis in axes:
        # Radians: MuJoCo converts degree ranges only for joints it limits, and the others keep their ranges
        # for PD target clipping and IK.
        lo, hi = np.radians(joint_range_deg(name, group, axis))
        vec = {"x": "1 0 0", "y": "0 1 0", "z": "0 0 1"}[axis]
        lines.append(f'{pad}  <joint name="{name}_{axis}" axis="{vec}" range="{lo:.6g} {hi:.6g}" class="{group}"/>')
    lines += [pad + "  " + g for g in _geoms(name, shape)]
    lines.append(f'{pad}  <site name="{skeleton.JOINT_NAMES[j]}" pos="0 0 0"/>')
    for leaf, carrier in LEAF_SITES.items():
        if carrier == name:
            lines.append(f'{pad}  <site name="{skeleton.JOINT_NAMES[leaf]}" pos="{_fmt(shape.offsets[leaf])}"/>')
    for child, child_parent, *_ in BODIES:
        if child_parent == name:
            lines += _body_xml(child, depth + 1, shape, rest)
    lines.append(f"{pad}</body>")
    return lines


def _default_classes(sim: SimConfig) -> list[str]:
    """One default class per actuator group: its joints' limits, armature and damping, its PD servo."""
    out = []
    for group, (kp, kv, tau) in GAINS.items():
        limited = sim.joint_limits == "all" or (sim.joint_limits == "hinge1" and group in ("knee", "elbow"))
        out.append(f'    <default class="{group}">\n'
                   f'      <joint limited="{"true" if limited else "false"}" '
                   f'armature="{ARMATURE.get(group, DEFAULT_ARMATURE):g}" damping="1"/>\n'
                   f'      <position kp="{kp:g}" kv="{kv:g}" forcelimited="true" forcerange="{-tau:g} {tau:g}" '
                   f'ctrllimited="false"/>\n'
                   f'    </default>')
    return out


def _floor_pairs(sim: SimConfig) -> list[str]:
    """Contact pairs with the floor: feet and `friction_contacts` with friction, `frictionless_contacts` without."""
    # Explicit pairs take their own solref (not the geoms'): contact time constant >= 2 timesteps for stability.
    solref = f"{max(0.02, 2.2 * sim.timestep):.4g} 1"
    hand = {"l_forearm": "l_hand", "r_forearm": "r_hand"}
    contacts = ([(g, 3) for g in ("r_foot", "l_foot")] + [(hand.get(b, b), 3) for b in sim.friction_contacts]
                + [(hand.get(b, b), 1) for b in sim.frictionless_contacts])
    return [f'    <pair geom1="floor" geom2="{g}" condim="{c}" solref="{solref}" friction="1 1 0.005 0.0001 0.0001"/>'
            for g, c in contacts]


def build_xml(shape: HumanoidShape | None = None, sim: SimConfig = SimConfig()) -> str:
    """MJCF text of the humanoid for `shape` (default: the bundled clips' body)."""
    shape = shape or default_shape()
    actuators = [f'    <position name="{name}_{axis}" joint="{name}_{axis}" class="{group}"/>'
                 for name, _, _, axes, group in BODIES for axis in axes]
    return "\n".join([
        '<mujoco model="ptjax_h36m_humanoid">',
        '  <compiler angle="radian" autolimits="true"/>',
        f'  <option timestep="{sim.timestep:.8g}" iterations="{sim.iterations}" ls_iterations="{sim.ls_iterations}" '
        f'solver="{sim.solver.upper() if sim.solver == "cg" else "Newton"}" '
        'integrator="implicitfast" cone="pyramidal" jacobian="dense">',
        '    <flag eulerdamp="disable"/>',
        '  </option>',
        '  <size memory="4M"/>',
        '  <default>',
        '    <geom contype="0" conaffinity="0" rgba="0.75 0.6 0.5 1"/>',
        *_default_classes(sim),
        '  </default>',
        '  <worldbody>',
        '    <light pos="0 0 4" dir="0 0 -1" directional="true"/>',
        '    <geom name="floor" type="plane" size="0 0 0.05" rgba="0.85 0.85 0.85 1"/>',
        *_body_xml("pelvis", 2, shape, shape.rest_joints()),
        '  </worldbody>',
        '  <contact>',
        *_floor_pairs(sim),
        '  </contact>',
        '  <actuator>',
        *actuators,
        '  </actuator>',
        '</mujoco>',
    ])


@dataclasses.dataclass(frozen=True, eq=False)  # identity hash: compiled functions are cached per humanoid
class Humanoid:
    """A compiled humanoid: the C model, and the index tables the imitator needs."""
    model: mujoco.MjModel
    shape: HumanoidShape
    sim: SimConfig
    h36m_site_ids: np.ndarray      # (17,) site id of each H36M joint
    body_ids: np.ndarray           # (14,) ids of BODIES in order
    hinge_qpos_adr: np.ndarray     # (29,) qpos address of each hinge, actuator order
    hinge_dof_adr: np.ndarray      # (29,) qvel address of each hinge
    hinge_range: np.ndarray        # (29, 2) radians
    hinge_group: tuple[str, ...]   # (29,) actuator group of each hinge
    foot_geom_ids: np.ndarray      # (2,) right, left

    @property
    def nq(self) -> int:
        return self.model.nq

    @property
    def nv(self) -> int:
        return self.model.nv

    @property
    def nu(self) -> int:
        return self.model.nu

    @property
    def control_dt(self) -> float:
        return self.sim.control_dt

    def rest_qpos(self, height: float | None = None) -> np.ndarray:
        """Standing at the origin facing +x, soles on the floor."""
        q = np.zeros(self.nq)
        rest = self.shape.rest_joints()
        lowest_ankle = rest[[J["RAnkle"], J["LAnkle"]], 2].min()
        q[2] = height if height is not None else -lowest_ankle + self.shape.ankle_height
        q[3] = 1.0
        return q


def build(shape: HumanoidShape | None = None, sim: SimConfig = SimConfig()) -> Humanoid:
    shape = shape or default_shape()
    model = mujoco.MjModel.from_xml_string(build_xml(shape, sim))
    site = lambda n: mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, n)  # noqa: E731
    body = lambda n: mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, n)  # noqa: E731
    hinge_names = [model.actuator(i).name for i in range(model.nu)]
    jids = [mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, n) for n in hinge_names]
    groups = tuple(group for name, _, _, axes, group in BODIES for _ in axes)
    return Humanoid(
        model=model, shape=shape, sim=sim,
        h36m_site_ids=np.array([site(n) for n in skeleton.JOINT_NAMES]),
        body_ids=np.array([body(b[0]) for b in BODIES]),
        hinge_qpos_adr=np.array([model.jnt_qposadr[j] for j in jids]),
        hinge_dof_adr=np.array([model.jnt_dofadr[j] for j in jids]),
        hinge_range=np.array([model.jnt_range[j] for j in jids]),
        hinge_group=groups,
        foot_geom_ids=np.array([mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, g) for g in ("r_foot", "l_foot")]),
    )
