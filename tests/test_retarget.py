import jax.numpy as jnp
import mujoco
import numpy as np
import pytest

from ptjax import skeleton
from ptjax.data import Motion, load_clips, pack_motions
from ptjax.imitator import humanoid, humanoid_kinematics, retarget

WALKING = ("walk", "walker_0walk_forward", "walker_turn_left0", "walker_turn_left1", "walker_turn_right0",
           "walker_turn_right1", "run")


@pytest.fixture(scope="module")
def body():
    return humanoid.build()


@pytest.fixture(scope="module")
def references(body):
    clips = load_clips()
    return dict(zip(clips, retarget.retarget_many(body, list(clips.values()))))


def test_fk_matches_mujoco(body):
    tree = humanoid_kinematics.kinematic_tree(body)
    rng = np.random.default_rng(0)
    d = mujoco.MjData(body.model)
    for _ in range(4):
        q = body.rest_qpos()
        q[:3] += rng.normal(size=3)
        quat = rng.normal(size=4)
        q[3:7] = quat / np.linalg.norm(quat)
        q[body.hinge_qpos_adr] = rng.uniform(body.hinge_range[:, 0], body.hinge_range[:, 1])
        d.qpos[:] = q
        mujoco.mj_kinematics(body.model, d)
        pos, rot = humanoid_kinematics.body_transforms(tree, jnp.asarray(q, jnp.float32))
        joints = humanoid_kinematics.humanoid_forward_kinematics(tree, jnp.asarray(q, jnp.float32))
        np.testing.assert_allclose(joints, d.site_xpos[body.h36m_site_ids], atol=2e-5)
        np.testing.assert_allclose(pos, d.xpos[body.body_ids], atol=2e-5)
        np.testing.assert_allclose(rot, d.xmat[body.body_ids].reshape(-1, 3, 3), atol=2e-5)


def test_ik_fk_error_limits_and_no_flips_on_all_clips(body, references):
    report = {}
    for name, ref in references.items():
        report[name] = float(ref.ik_error.mean()) * 1000
        hinge = np.asarray(ref.qpos)[:, body.hinge_qpos_adr]
        assert np.all(hinge >= body.hinge_range[:, 0] - 1e-5) and np.all(hinge <= body.hinge_range[:, 1] + 1e-5)
        jump = np.degrees(np.abs(np.diff(hinge, axis=0)).max())
        assert jump < (35.0 if name in WALKING else 90.0), (name, jump)
        quat = np.asarray(ref.qpos[:, 3:7])
        assert np.all(np.abs(np.sum(quat[1:] * quat[:-1], -1)) > np.cos(np.radians(45) / 2)), name  # root too
    print("IK->FK mean joint error per clip (mm):", {k: round(v, 2) for k, v in report.items()})
    assert max(report.values()) <= 15.0, report
    assert np.median(list(report.values())) < 3.0


def test_reference_motion_features(body, references):
    ref = references["walk"]
    assert ref.fps == 30.0 and ref.qpos.shape == (39, body.nq) and ref.qvel.shape == (39, body.nv)
    assert ref.body_quat.shape == (39, 14, 4) and ref.end_effectors().shape == (39, 5, 3)
    # Hinge velocities are central differences of the angles; the root moves forward at walking speed.
    q, v = np.asarray(ref.qpos), np.asarray(ref.qvel)
    np.testing.assert_allclose(v[1:-1][:, body.hinge_dof_adr],
                               (q[2:] - q[:-2])[:, body.hinge_qpos_adr] * 15.0, atol=1e-3)
    assert 0.8 < v[:, 0].mean() < 1.2
    # Ground alignment: the lowest sole over the clip touches the floor.
    sole = np.asarray(ref.joints)[:, [3, 6], 2] - body.shape.ankle_height
    assert abs(sole.min()) < 0.01


def test_references_of_a_batch_equal_each_motions_own(body, references):
    """retarget_many builds the kinematics of all motions (different lengths) in one pass: each reference is bit for
    bit what reference_from_qpos gives for that motion alone."""
    for name in ("walk", "cartwheel", "run"):
        ref = references[name]
        alone = retarget.reference_from_qpos(body, np.asarray(ref.qpos), ref.fps, np.asarray(ref.joints))
        for field in ("qpos", "qvel", "joints", "body_pos", "body_quat"):
            np.testing.assert_array_equal(np.asarray(getattr(ref, field)), np.asarray(getattr(alone, field)), field)


def test_ik_split_over_devices_gives_each_take_the_same_solution(body, references):
    """With a mesh, the takes' IK runs split over its devices (3 takes on 2 devices: one padding row): every take's
    solution is the one solved in the single-device batch of all clips (bit for bit on this project's machine; the
    split program is compiled apart, so float rounding may differ elsewhere)."""
    from ptjax import parallel
    names = ("walk", "cartwheel", "run")
    split = retarget.retarget_many(body, list(load_clips(names).values()), mesh=parallel.make_mesh(2))
    for name, ref in zip(names, split):
        np.testing.assert_allclose(np.asarray(ref.qpos), np.asarray(references[name].qpos), atol=1e-3, err_msg=name)
        assert np.mean(np.abs(np.asarray(ref.qpos) - np.asarray(references[name].qpos))) < 1e-5


def test_closed_form_jacobian_fits_as_the_autodiff_one(body, references):
    """IKConfig(jacobian="geometric") (configs/gpu.py) solves the same least-squares problem with each Jacobian
    column written as a joint's twist instead of jax.jacfwd: the same fits, up to float rounding."""
    clips = load_clips()
    cfg = retarget.RetargetConfig(ik=retarget.IKConfig(jacobian="geometric"))
    fast = dict(zip(clips, retarget.retarget_many(body, list(clips.values()), cfg)))
    error_mm = {n: 1000 * abs(float(fast[n].ik_error.mean()) - float(ref.ik_error.mean()))
                for n, ref in references.items()}
    assert max(error_mm.values()) < 0.5, error_mm
    dq = np.concatenate([np.abs(np.asarray(fast[n].qpos) - np.asarray(ref.qpos)).ravel()
                         for n, ref in references.items()])
    assert np.median(dq) < 1e-5 and np.mean(dq) < 1e-3, (np.median(dq), np.mean(dq))
    with pytest.raises(ValueError, match="jacobian must be 'autodiff' or 'geometric'"):
        retarget.IKConfig(jacobian="numeric")


def test_handedness_repair_restores_flipped_frames(body):
    walk = load_clips(["walk"])["walk"].joints
    flipped = walk.copy()
    frames = np.array([5, 6, 20])
    # An estimator's left/right confusion: labels swapped, geometry unchanged, so relative to the (now reversed)
    # pelvis frame the knees bend backward.
    flipped[frames] = walk[frames][:, list(skeleton.FLIP_PERMUTATION)]
    repaired, swapped = retarget.fix_handedness(flipped)
    bent = retarget.knee_bend_score(walk) > 0.02
    assert set(np.flatnonzero(swapped)) == set(frames[bent[frames]])
    assert np.all(retarget.knee_bend_score(repaired)[bent] > 0)


def test_bad_input_is_refused(body):
    walk = load_clips(["walk"])["walk"]
    bad = walk.joints.copy()
    bad[3, 5] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        humanoid_kinematics.humanoid_inverse_kinematics(body, bad)
    with pytest.raises(ValueError, match="16 joints"):
        humanoid_kinematics.humanoid_inverse_kinematics(body, walk.joints[:, :16])
    collapsed = walk.joints.copy()
    collapsed[:, 2] = collapsed[:, 1]  # zero-length thigh
    with pytest.raises(ValueError, match="zero-length bone RHip-RKnee"):
        retarget.retarget(body, Motion("collapsed", 30.0, collapsed))
    with pytest.raises(ValueError, match="at least 2"):
        retarget.retarget(body, Motion("one", 30.0, walk.joints[:1]))
    with pytest.raises(ValueError, match="ground"):
        retarget.RetargetConfig(ground="sometimes")


def test_device_preparation_equals_the_host_one(body, references):
    """RetargetConfig(prepare="device") (configs/gpu.py) prepares the padded takes in one float32 program: the same
    repaired, bone-reset, grounded joints as the numpy path take by take (up to float rounding), for every grounding
    and with handedness repair, on takes of different lengths; a zero-length bone is refused naming the take."""
    clips = load_clips(["walk", "cartwheel", "run"])
    motions = [m.resample(30.0) for m in clips.values()]  # prepare_padded takes motion at the control rate
    flipped = motions[0].joints.copy()
    flipped[[4, 9]] = flipped[[4, 9]][:, list(skeleton.FLIP_PERMUTATION)]
    motions[0] = Motion("walk_flipped", 30.0, flipped)
    lengths = [m.num_frames for m in motions]
    packed = pack_motions(motions)
    for ground in ("clip", "frame", "none"):
        cfg = retarget.RetargetConfig(fix_handedness=True, ground=ground)
        device, swapped, degenerate = retarget.prepare_padded(
            packed.joints, packed.lengths, np.asarray(body.shape.bone_lengths, np.float32), body.shape.ankle_height,
            fix_handedness=True, ground=ground)
        assert not np.any(degenerate)
        for i, m in enumerate(motions):
            host, host_swapped = retarget.prepare_joints(body, m, cfg)
            np.testing.assert_allclose(np.asarray(device[i, :lengths[i]]), host, atol=2e-5, err_msg=ground)
            np.testing.assert_array_equal(np.asarray(swapped[i, :lengths[i]]), host_swapped)
            np.testing.assert_array_equal(np.asarray(device[i, lengths[i]:]),
                                          np.broadcast_to(device[i, lengths[i] - 1], device[i, lengths[i]:].shape))
    assert np.asarray(swapped[0]).sum() >= 1
    collapsed = motions[2].joints.copy()
    collapsed[:, 2] = collapsed[:, 1]
    with pytest.raises(ValueError, match="'collapsed' has a zero-length bone"):
        retarget.retarget_many(body, [motions[1], Motion("collapsed", 30.0, collapsed)],
                               retarget.RetargetConfig(prepare="device"))
    with pytest.raises(ValueError, match="prepare must be 'host' or 'device'"):
        retarget.RetargetConfig(prepare="gpu")
    # Through the IK: the same fits on every bundled clip (the batch's shape is the host path's: one compile).
    every = load_clips()
    on_device = dict(zip(every, retarget.retarget_many(body, list(every.values()),
                                                       retarget.RetargetConfig(prepare="device"))))
    for name, ref in references.items():
        assert on_device[name].num_frames == ref.num_frames
        assert abs(float(on_device[name].ik_error.mean()) - float(ref.ik_error.mean())) < 1e-4, name
        assert np.mean(np.abs(np.asarray(on_device[name].qpos) - np.asarray(ref.qpos))) < 1e-3, name


def test_padded_takes_become_the_library_on_device(body, references):
    """configs/gpu.py's lift and refine: padded world joints -> the fields of I's reference library in three
    programs (`retarget.retarget_padded`), the library `make_library` builds from `retarget_many`'s references take
    by take (up to float rounding); empty slots go last as zero-weight copies of the first take; a take of NaN joints
    is refused by name."""
    from ptjax.imitator.env import make_library
    every = load_clips()
    names, motions = list(every), list(every.values())
    cfg = retarget.RetargetConfig(prepare="device")
    packed = pack_motions(motions, fps=cfg.fps)
    fields, errors = retarget.retarget_padded(body, packed.joints, packed.lengths, cfg)
    expected = make_library(retarget.retarget_many(body, motions, cfg), max_frames=packed.joints.shape[1])
    np.testing.assert_array_equal(np.asarray(fields["qpos"]), np.asarray(expected.qpos))  # the same IK program
    np.testing.assert_array_equal(np.asarray(fields["lengths"]), np.asarray(expected.lengths))
    np.testing.assert_array_equal(np.asarray(fields["weights"]), np.ones(len(names)))
    # A quaternion's small components are square roots of near-zero sums of the matrix (rounding 1e-8 -> 1e-4).
    for key, atol in (("joints", 1e-5), ("body_pos", 1e-5), ("body_quat", 5e-4), ("qvel", 2e-3)):
        np.testing.assert_allclose(np.asarray(fields[key]), np.asarray(getattr(expected, key)), atol=atol,
                                   err_msg=key)
    np.testing.assert_allclose(np.asarray(errors), [float(r.ik_error.mean()) for r in references.values()],
                               atol=1e-4)

    lengths = np.asarray(packed.lengths).copy()
    lengths[2] = 0  # an empty slot in the middle
    library, errors = retarget.retarget_padded(body, packed.joints, lengths, cfg)
    kept = [i for i in range(len(names)) if i != 2]
    assert errors.shape == (len(kept),)
    np.testing.assert_array_equal(np.asarray(library["lengths"]), np.r_[lengths[kept], lengths[0]])
    np.testing.assert_array_equal(np.asarray(library["weights"]), np.r_[np.ones(len(kept)), 0.0])
    np.testing.assert_allclose(np.asarray(library["qpos"][:len(kept)]), np.asarray(expected.qpos)[kept], atol=1e-5)
    np.testing.assert_allclose(np.asarray(library["qpos"][-1]), np.asarray(expected.qpos[0]), atol=1e-5)

    broken = np.asarray(packed.joints).copy()
    broken[5, 3, 7] = np.nan
    with pytest.raises(ValueError, match=f"take '{names[5]}' holds NaN"):
        retarget.retarget_padded(body, broken, packed.lengths, cfg, names=names)
