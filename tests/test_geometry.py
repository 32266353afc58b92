"""ptjax.geometry: the one rotation module, checked against SciPy's rotations."""

import jax.numpy as jnp
import numpy as np
from scipy.spatial.transform import Rotation

from ptjax import geometry

_RNG = np.random.default_rng(3)
_QUATS = _RNG.normal(size=(64, 4))                     # unnormalised on purpose: the functions normalise
_SCIPY = Rotation.from_quat(_QUATS[:, [1, 2, 3, 0]])   # SciPy's quaternions are (x, y, z, w)


def test_quaternions_and_matrices_agree_with_scipy_both_ways():
    mats = np.asarray(geometry.quat_to_matrix(jnp.asarray(_QUATS, jnp.float32)))
    np.testing.assert_allclose(mats, _SCIPY.as_matrix(), atol=2e-6)
    np.testing.assert_allclose(geometry.quat_to_matrix(_QUATS, xp=np), _SCIPY.as_matrix(), atol=1e-12)
    back = np.asarray(geometry.matrix_to_quat(jnp.asarray(mats)))
    assert np.all(back[:, 0] >= 0)
    np.testing.assert_allclose(np.abs(np.sum(back * _QUATS / np.linalg.norm(_QUATS, axis=-1, keepdims=True), -1)),
                               1.0, atol=1e-5)


def test_axis_euler_and_yaw_rotations_follow_scipys_conventions():
    angles = _RNG.uniform(-np.pi, np.pi, size=(32, 3))
    np.testing.assert_allclose(geometry.euler_xyz(jnp.asarray(angles, jnp.float32)),
                               Rotation.from_euler("xyz", angles).as_matrix(), atol=2e-6)
    for axis, name in enumerate("xyz"):
        np.testing.assert_allclose(geometry.axis_rotation(axis, angles[:, axis], xp=np),
                                   Rotation.from_euler(name, angles[:, axis:axis + 1]).as_matrix(), atol=1e-12)
    yaw = geometry.yaw_matrix(jnp.float32(np.pi / 2))
    np.testing.assert_allclose(yaw @ jnp.array([1.0, 0.0, 0.0]), [0.0, 1.0, 0.0], atol=1e-6)   # +x turns to +y


def test_sixd_layout_is_the_first_two_columns_and_round_trips():
    mats = jnp.asarray(_SCIPY.as_matrix(), jnp.float32)
    six = geometry.matrix_to_6d(mats)
    np.testing.assert_array_equal(six[:, :3], mats[:, :, 0])
    np.testing.assert_array_equal(six[:, 3:], mats[:, :, 1])
    np.testing.assert_allclose(geometry.sixd_to_matrix(six * 3.0), mats, atol=2e-6)   # scale does not matter


def test_rotation_angle_so3_log_and_exp_agree_with_scipy():
    mats = jnp.asarray(_SCIPY.as_matrix(), jnp.float32)
    magnitude = _SCIPY.magnitude()
    np.testing.assert_allclose(geometry.rotation_angle(mats), magnitude, atol=2e-3)
    between = geometry.rotation_angle(mats[:32], mats[32:])
    np.testing.assert_allclose(between, (_SCIPY[:32].inv() * _SCIPY[32:]).magnitude(), atol=2e-3)
    assert float(geometry.rotation_angle(mats[0], mats[0], clip_eps=1e-7)) < 1e-3
    small = _SCIPY[magnitude < 3.0]
    vectors = np.asarray(geometry.so3_log(jnp.asarray(small.as_matrix(), jnp.float32)))
    np.testing.assert_allclose(vectors, small.as_rotvec(), atol=2e-3)
    np.testing.assert_allclose(geometry.so3_exp(jnp.asarray(small.as_rotvec(), jnp.float32)), small.as_matrix(),
                               atol=2e-6)


def test_heading_rotation_keeps_only_the_yaw_of_the_forward_axis():
    yaw, pitch = 0.8, 0.3
    body = Rotation.from_euler("ZY", [yaw, pitch]).as_matrix()
    np.testing.assert_allclose(geometry.heading_rotation(jnp.asarray(body, jnp.float32)),
                               Rotation.from_euler("z", yaw).as_matrix(), atol=2e-6)
