"""H36M-17 rotational kinematics: exact round trip on the bundled clips, smooth twist, bone-length tools."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ptjax import geometry
from ptjax import kinematics as K
from ptjax import skeleton
from ptjax.data import load_clips, pack_motions


@pytest.fixture(scope="module")
def clips30():
    """All 20 bundled clips at 30 fps, packed (N, T_max, 17, 3) with their lengths."""
    buf = pack_motions(list(load_clips().values()), fps=30.0)
    return np.asarray(buf.joints), np.asarray(buf.lengths)


@pytest.fixture(scope="module")
def ik_fk():
    return jax.jit(K.inverse_kinematics), jax.jit(K.forward_kinematics)


def test_round_trip_all_clips(clips30, ik_fk):
    ik, fk = ik_fk
    joints, lengths = clips30
    assert joints.shape[0] == 20
    rot, root, bl = ik(joints)
    assert rot.shape == joints.shape[:2] + (17, 3, 3) and root.shape == joints.shape[:2] + (3,)
    assert bl.shape == joints.shape[:2] + (16,)
    back = np.asarray(fk(rot, root, bl))
    err = np.abs(back - joints).max(axis=(2, 3))
    valid = np.arange(joints.shape[1])[None] < lengths[:, None]
    assert err[valid].max() < 1e-5, f"round-trip error {err[valid].max()} m"
    # Rotations are proper rotations.
    rot = np.asarray(rot, np.float64)
    assert np.abs(rot @ np.swapaxes(rot, -1, -2) - np.eye(3)).max() < 1e-5
    assert np.abs(np.linalg.det(rot) - 1).max() < 1e-5


def test_rotations_are_smooth_on_clips(clips30, ik_fk):
    """No twist flips: a bone frame turns per frame at most a little more than its own direction does."""
    ik, _ = ik_fk
    joints, lengths = clips30
    rot, _, _ = ik(joints)
    g = K.local_to_global(rot)
    dang = np.degrees(np.asarray(geometry.rotation_angle(g[:, :-1], g[:, 1:])))        # (N, T-1, 17)
    dirs = np.asarray(geometry.normalize(K.bone_vectors(joints)))
    ddir = np.degrees(np.arccos(np.clip(np.sum(dirs[:, 1:] * dirs[:, :-1], -1), -1, 1)))
    valid = np.arange(joints.shape[1] - 1)[None] < (lengths[:, None] - 1)
    excess = (dang - ddir)[valid]
    # Fast spins legitimately twist bones by ~20 degrees per frame at 30 fps; a flipped twist would be ~180.
    assert excess.max() < 30.0, excess.max()
    local = np.degrees(np.asarray(geometry.rotation_angle(rot[:, :-1], rot[:, 1:])))[valid]
    assert local.max() < 60.0, local.max()


def _leg_pose(knee_deg, hip_abduction_deg=0.0, lengths=None):
    """A standing pose whose right knee is bent by knee_deg (negative: hyperextended) in a leg swung sideways."""
    lengths = np.asarray(K.bone_lengths(load_clips(["walk"])["walk"].joints[0])) if lengths is None else lengths
    rest = np.asarray(K.rest_pose(lengths))
    pose = rest.copy()
    a = np.radians(hip_abduction_deg)
    thigh = np.array([0.0, -np.sin(a), -np.cos(a)])
    k = np.radians(knee_deg)
    # Knee flexion: the shin turns backwards (-x) within the sagittal plane of the thigh.
    shin = np.cos(k) * thigh + np.sin(k) * np.array([-1.0, 0.0, 0.0])
    pose[2] = pose[1] + lengths[1] * thigh
    pose[3] = pose[2] + lengths[2] * shin
    return pose


def test_twist_stable_through_straight_limb(ik_fk):
    """A knee flexing from 40 degrees through straight to slightly hyperextended keeps a continuous thigh frame."""
    ik, fk = ik_fk
    angles = np.linspace(40.0, -5.0, 91)
    poses = np.stack([_leg_pose(a) for a in angles]).astype(np.float32)
    rot, root, bl = ik(poses)
    assert np.abs(np.asarray(fk(rot, root, bl)) - poses).max() < 1e-5
    thigh_frame = K.local_to_global(rot)[:, 2]
    step = np.degrees(np.asarray(geometry.rotation_angle(thigh_frame[:-1], thigh_frame[1:])))
    assert step.max() < 1.0, step.max()          # the thigh does not move: its frame barely turns
    knee = np.degrees(np.asarray(geometry.rotation_angle(rot[:, 3])))
    np.testing.assert_allclose(knee, np.abs(angles), atol=0.5)  # the knee rotation is the flexion angle


def test_bone_lengths_exact_for_any_rotations(ik_fk):
    _, fk = ik_fk
    rng = np.random.default_rng(0)
    rot = np.asarray(geometry.sixd_to_matrix(jnp.asarray(rng.normal(size=(8, 17, 6)), jnp.float32)))
    lengths = rng.uniform(0.05, 0.5, size=(8, 16)).astype(np.float32)
    joints = fk(rot, rng.normal(size=(8, 3)).astype(np.float32), lengths)
    np.testing.assert_allclose(np.asarray(K.bone_lengths(joints)), lengths, atol=2e-6)


def test_rest_pose_and_heading():
    lengths = np.asarray(K.bone_lengths(load_clips(["walk"])["walk"].joints[0]))
    rest = np.asarray(K.rest_pose(lengths))
    assert rest[skeleton.JOINT_INDEX["Head"], 2] > rest[0, 2] > rest[3, 2]   # upright
    assert rest[4, 1] > 0 > rest[1, 1]                                       # left hip on +y
    assert abs(float(K.heading(rest))) < 1e-6                               # facing +x
    walk = load_clips(["walk"])["walk"].joints[:10]
    h0 = np.asarray(K.heading(walk))
    turned = walk @ np.asarray(geometry.yaw_matrix(jnp.float32(0.7))).T
    dh = np.angle(np.exp(1j * (np.asarray(K.heading(turned)) - h0)))
    np.testing.assert_allclose(dh, 0.7, atol=1e-4)


def test_set_bone_lengths_keeps_directions():
    joints = load_clips(["cartwheel"])["cartwheel"].joints[::20]
    new = np.linspace(0.05, 0.6, 16).astype(np.float32)
    out = np.asarray(K.set_bone_lengths(joints, new))
    np.testing.assert_allclose(np.asarray(K.bone_lengths(out)), np.broadcast_to(new, (len(joints), 16)), atol=1e-6)
    np.testing.assert_allclose(out[:, 0], joints[:, 0])
    d_in = np.asarray(geometry.normalize(K.bone_vectors(joints)))
    d_out = np.asarray(geometry.normalize(K.bone_vectors(out)))
    np.testing.assert_allclose(d_out, d_in, atol=1e-6)


def test_6d_conversion_round_trip():
    rng = np.random.default_rng(1)
    r = np.asarray(geometry.sixd_to_matrix(jnp.asarray(rng.normal(size=(50, 6)), jnp.float32)))
    np.testing.assert_allclose(np.asarray(geometry.sixd_to_matrix(geometry.matrix_to_6d(r))), r, atol=1e-6)
    a, b = geometry.normalize(jnp.asarray(rng.normal(size=(50, 3)), jnp.float32)), \
        geometry.normalize(jnp.asarray(rng.normal(size=(50, 3)), jnp.float32))
    np.testing.assert_allclose(np.asarray(jnp.einsum("nij,nj->ni", geometry.swing(a, b), a)), np.asarray(b), atol=1e-5)


def test_check_positions_errors():
    walk = load_clips(["walk"])["walk"].joints
    assert K.check_positions(walk).shape == walk.shape
    bad = walk.copy()
    bad[3, 5] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        K.check_positions(bad)
    bad = walk.copy()
    bad[2, 2] = bad[2, 1]  # zero-length thigh
    with pytest.raises(ValueError, match="impossible bone length .* RHip->RKnee"):
        K.check_positions(bad)
    bad = walk.copy()
    bad[0, 13] += 5.0  # a 5 m forearm
    with pytest.raises(ValueError, match="LElbow->LWrist"):
        K.check_positions(bad)
    with pytest.raises(ValueError, match="joints"):
        K.check_positions(walk[:, :16])
