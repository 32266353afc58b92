import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ptjax import metrics


def _np_p_mpjpe(predicted, target):
    """VideoPose3D's NumPy reference (common/loss.py), per frame (N, J, 3)."""
    mu_x = target.mean(1, keepdims=True)
    mu_y = predicted.mean(1, keepdims=True)
    x0, y0 = target - mu_x, predicted - mu_y
    norm_x = np.sqrt((x0 ** 2).sum((1, 2), keepdims=True))
    norm_y = np.sqrt((y0 ** 2).sum((1, 2), keepdims=True))
    x0, y0 = x0 / norm_x, y0 / norm_y
    u, s, vt = np.linalg.svd(x0.transpose(0, 2, 1) @ y0)
    v = vt.transpose(0, 2, 1)
    r = v @ u.transpose(0, 2, 1)
    sign = np.sign(np.linalg.det(r))[:, None]
    v[:, :, -1] *= sign
    s[:, -1] *= sign.ravel()
    r = v @ u.transpose(0, 2, 1)
    a = s.sum(1, keepdims=True)[:, :, None] * norm_x / norm_y
    t = mu_x - a * (mu_y @ r)
    aligned = a * (predicted @ r) + t
    return np.linalg.norm(aligned - target, axis=-1).mean()


def _random_rotation(rng):
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] *= -1
    return q


def test_p_mpjpe_ignores_similarity_transforms():
    rng = np.random.default_rng(0)
    gt = rng.normal(scale=0.3, size=(32, 17, 3))
    moved = np.stack([1.7 * g @ _random_rotation(rng).T + rng.normal(size=3) for g in gt])
    assert float(metrics.p_mpjpe(jnp.asarray(moved, jnp.float32), jnp.asarray(gt, jnp.float32))) < 1e-4
    assert float(metrics.mpjpe(moved, gt)) > 0.1


def test_metrics_match_numpy_reference():
    rng = np.random.default_rng(1)
    gt = rng.normal(scale=0.3, size=(2, 20, 17, 3))
    pred = gt + rng.normal(scale=0.05, size=gt.shape)
    np.testing.assert_allclose(metrics.mpjpe(pred, gt), np.linalg.norm(pred - gt, axis=-1).mean(), rtol=1e-6)
    np.testing.assert_allclose(metrics.p_mpjpe(pred, gt),
                               _np_p_mpjpe(pred.reshape(-1, 17, 3), gt.reshape(-1, 17, 3)), rtol=1e-5)
    scale = (gt * pred).sum((-1, -2), keepdims=True) / (pred ** 2).sum((-1, -2), keepdims=True)
    np.testing.assert_allclose(metrics.n_mpjpe(pred, gt), np.linalg.norm(scale * pred - gt, axis=-1).mean(),
                               rtol=1e-6)
    jitted = jax.jit(metrics.p_mpjpe)(jnp.asarray(pred, jnp.float32), jnp.asarray(gt, jnp.float32))
    np.testing.assert_allclose(jitted, _np_p_mpjpe(pred.reshape(-1, 17, 3), gt.reshape(-1, 17, 3)), rtol=1e-4)


def test_pck_and_auc_by_hand():
    gt = np.zeros((1, 4, 3))
    pred = gt.copy()
    pred[0, :, 0] = [0.0, 0.102, 0.149, 0.2]  # errors 0, 102, 149, 200 mm
    assert float(metrics.pck(pred, gt)) == pytest.approx(0.75)
    assert float(metrics.pck(pred, gt, threshold=0.1)) == pytest.approx(0.25)
    assert float(metrics.pck(pred, gt, threshold=0.2)) == pytest.approx(0.75)  # strict: 200 mm is not < 200 mm
    # Thresholds 0, 5, ..., 150 mm: joint 0 counts at 30 of 31 (not at 0), joint 1 at 10 (105..150),
    # joint 2 at 1 (150), joint 3 never.
    assert float(metrics.auc(pred, gt)) == pytest.approx((30 + 10 + 1 + 0) / (31 * 4))


def test_accel_and_bone_length_errors():
    rng = np.random.default_rng(2)
    gt = rng.normal(size=(10, 17, 3))
    assert float(metrics.accel_error(gt + np.array([1.0, 2.0, 3.0]), gt)) < 1e-6  # a constant offset has no accel
    assert float(metrics.bone_length_error(gt * 1.0, gt)) == 0.0
    scaled = gt * 1.1
    from ptjax import skeleton
    expected = np.abs(skeleton.bone_lengths(scaled) - skeleton.bone_lengths(gt)).mean()
    assert float(metrics.bone_length_error(scaled, gt)) == pytest.approx(expected, rel=1e-5)


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="differs"):
        metrics.mpjpe(np.zeros((17, 3)), np.zeros((16, 3)))
    with pytest.raises(ValueError, match="T >= 3"):
        metrics.accel_error(np.zeros((2, 17, 3)), np.zeros((2, 17, 3)))
