import jax
import mujoco
import numpy as np
import pytest
from ptjax.mjx_support import mjx

from ptjax import skeleton
from ptjax.data import load_clips
from ptjax.imitator import humanoid


@pytest.fixture(scope="module")
def body():
    return humanoid.build()


def test_model_layout_and_mass(body):
    m = body.model
    assert (m.nq, m.nv, m.nu) == (36, 35, 29)
    assert m.body_subtreemass[body.body_ids[0]] == pytest.approx(70.0, abs=0.01)
    assert m.opt.integrator == mujoco.mjtIntegrator.mjINT_IMPLICITFAST
    assert body.control_dt == pytest.approx(1 / 30)
    # Every hinge has an anatomical range and a position servo with a torque limit.
    assert np.all(body.hinge_range[:, 0] < 0) and np.all(body.hinge_range[:, 1] > 0)
    assert np.all(m.actuator_forcerange[:, 1] > 0) and np.all(m.actuator_gainprm[:, 0] > 0)
    # The bundled clips share one skeleton and the default body is built from it.
    clip_bones = np.median(skeleton.bone_lengths(load_clips(["walk"])["walk"].joints), 0)
    np.testing.assert_allclose(body.shape.bone_lengths, clip_bones, atol=2e-3)


def test_sites_are_the_shape_at_rest(body):
    d = mujoco.MjData(body.model)
    d.qpos[:] = body.rest_qpos()
    mujoco.mj_forward(body.model, d)
    sites = d.site_xpos[body.h36m_site_ids]
    np.testing.assert_allclose(sites - sites[0], body.shape.rest_joints(), atol=1e-6)
    # Soles on the floor: the feet's lowest corners are at z ~ 0.
    foot_bottom = d.geom_xpos[body.foot_geom_ids, 2] - body.model.geom_size[body.foot_geom_ids, 2]
    np.testing.assert_allclose(foot_bottom, 0.0, atol=2e-3)


def test_stands_ten_seconds_in_mjx(body):
    mx = mjx.put_model(body.model, impl="jax")
    d = mujoco.MjData(body.model)
    d.qpos[:] = body.rest_qpos()
    mujoco.mj_forward(body.model, d)
    steps = int(round(10.0 / body.model.opt.timestep))

    @jax.jit
    def run(dx):
        return jax.lax.scan(lambda d, _: (mjx.step(mx, d), d.qpos[:3]), dx, None, length=steps)

    final, root = run(mjx.put_data(body.model, d, impl="jax"))
    root = np.asarray(root)
    assert np.all(np.isfinite(np.asarray(final.qpos)))
    assert np.ptp(root[:, 2]) < 0.02  # no fall, no bounce
    assert np.abs(root[-1, :2]).max() < 0.05


def test_mjx_matches_c_mujoco_before_contact(body):
    rng = np.random.default_rng(0)
    d = mujoco.MjData(body.model)
    q = body.rest_qpos()
    q[2] = 2.0  # in the air: no contact for the first steps
    q[body.hinge_qpos_adr] = rng.uniform(0.2 * body.hinge_range[:, 0], 0.2 * body.hinge_range[:, 1])
    d.qpos[:] = q
    d.qvel[:] = rng.normal(scale=0.2, size=body.nv)
    d.ctrl[:] = q[body.hinge_qpos_adr] + rng.normal(scale=0.05, size=body.nu)  # servos away from saturation
    mujoco.mj_forward(body.model, d)
    mx = mjx.put_model(body.model, impl="jax")
    dx = mjx.put_data(body.model, d, impl="jax")
    final = jax.jit(lambda dx: jax.lax.fori_loop(0, 20, lambda _, s: mjx.step(mx, s), dx))(dx)
    for _ in range(20):
        mujoco.mj_step(body.model, d)
    assert d.ncon == 0
    np.testing.assert_allclose(np.asarray(final.qpos), d.qpos, atol=1e-4)  # float32 MJX vs float64 C
    np.testing.assert_allclose(np.asarray(final.qvel), d.qvel, atol=5e-3)


def test_shape_validation():
    lengths = humanoid.default_shape().bone_lengths.copy()
    humanoid.shape_from_bone_lengths(lengths * 1.1)  # a taller body builds
    bad = lengths.copy()
    bad[3] = 0.0
    with pytest.raises(ValueError, match="too short"):
        humanoid.shape_from_bone_lengths(bad)
    with pytest.raises(ValueError, match=r"\(16,\)"):
        humanoid.shape_from_bone_lengths(lengths[:15])
    with pytest.raises(ValueError, match="finite"):
        humanoid.shape_from_bone_lengths(np.full(16, np.nan))
    with pytest.raises(ValueError, match="joint"):
        humanoid.shape_from_motion(np.zeros((10, 16, 3)))
    with pytest.raises(ValueError, match="joint_limits"):
        humanoid.SimConfig(joint_limits="some")
