import jax
import jax.numpy as jnp
import numpy as np

from ptjax import camera
from ptjax.data import load_clips


def test_projection_round_trip():
    rng = np.random.default_rng(0)
    pts = jnp.asarray(rng.uniform([-1, -1, 2], [1, 1, 6], size=(50, 17, 3)), jnp.float32)
    intr = camera.Intrinsics(fx=jnp.float32(1145.0), fy=jnp.float32(1143.0), cx=jnp.float32(512.5),
                             cy=jnp.float32(515.4), width=jnp.float32(1000.0), height=jnp.float32(1002.0))
    pix = camera.project(pts, intr)
    back = camera.back_project(pix, pts[..., 2], intr)
    assert float(jnp.abs(back - pts).max()) < 1e-5
    norm = camera.normalize_screen(pix, 1000.0, 1002.0)
    np.testing.assert_allclose(camera.unnormalize_screen(norm, 1000.0, 1002.0), pix, rtol=1e-6, atol=1e-3)
    back_n = camera.back_project_normalized(camera.project_normalized(pts), pts[..., 2])
    assert float(jnp.abs(back_n - pts).max()) < 1e-5


def test_normalize_screen_matches_videopose3d():
    x = np.array([[0.0, 0.0], [1000.0, 1002.0], [500.0, 501.0]], np.float32)
    out = np.asarray(camera.normalize_screen(jnp.asarray(x), 1000, 1002))
    np.testing.assert_allclose(out, x / 1000 * 2 - [1, 1002 / 1000], atol=1e-6)


def test_world_camera_round_trip_and_look_at():
    rng = np.random.default_rng(1)
    cams = camera.random_cameras(jax.random.key(0), (8,))
    pts = jnp.asarray(rng.normal(size=(8, 17, 3)), jnp.float32)
    back = camera.camera_to_world(camera.world_to_camera(pts, cams), cams)
    assert float(jnp.abs(back - pts).max()) < 1e-5
    rot = np.asarray(cams.rotation)
    np.testing.assert_allclose(rot @ rot.transpose(0, 2, 1), np.broadcast_to(np.eye(3), rot.shape), atol=1e-5)
    np.testing.assert_allclose(np.linalg.det(rot), 1.0, atol=1e-5)
    cam = camera.look_at(jnp.array([4.0, 0.0, 1.5]), jnp.array([0.0, 0.0, 1.5]))
    p = camera.world_to_camera(jnp.array([[0.0, 0.0, 1.5], [0.0, 0.0, 2.0], [0.0, -1.0, 1.5]]), cam)
    np.testing.assert_allclose(p[0], [0, 0, 4], atol=1e-6)
    assert p[1, 1] < 0  # world up is image up (camera y points down)
    assert p[2, 0] < 0  # looking along -x with Z up, world -y is on the image left


def test_random_cameras_see_whole_body():
    """PoseTriplet's camera ranges, every frame of every bundled clip with its root at the origin: every joint is
    in front of the camera and inside the virtual camera's field of view (`camera.VIRTUAL_FOV_HALF`), and the
    walking clips fit the H36M-sized frame."""
    clips = load_clips()
    center = lambda j: j - np.concatenate([j[:, :1, :2], np.zeros_like(j[:, :1, :1])], -1)  # noqa: E731
    poses = np.concatenate([center(m.joints) for m in clips.values()])
    cams = camera.random_cameras(jax.random.key(3), (64,))
    cam_pts = jax.vmap(lambda c: camera.world_to_camera(jnp.asarray(poses), c))(cams)
    assert float(cam_pts[..., 2].min()) > 2.0
    uv = camera.project_normalized(cam_pts)
    assert float(jnp.abs(uv).max()) < camera.VIRTUAL_FOV_HALF
    assert float(jnp.abs(uv[..., 0, :]).max()) < 1.0  # the pelvis is always inside the H36M-sized frame
    walking = np.concatenate([center(clips[n].joints) for n in ("walk", "walker_turn_left0", "run")])
    uv_walk = jax.vmap(lambda c: camera.project_normalized(camera.world_to_camera(jnp.asarray(walking), c)))(cams)
    assert float(jnp.abs(uv_walk[..., 0]).max()) < 1.0 and float(jnp.abs(uv_walk[..., 1]).max()) < 1.25
    # Upright bodies look upright: the head is above the ankles in the image (y down) for standing frames.
    standing = poses[:, 10, 2] - poses[:, [3, 6], 2].max(-1) > 1.2
    assert bool(jnp.all(uv[:, standing, 10, 1] < uv[:, standing, 3, 1]))


def test_random_cameras_are_jittable_and_in_range():
    cams = jax.jit(lambda k: camera.random_cameras(k, (256,)))(jax.random.key(1))
    pos = np.asarray(cams.position)
    assert pos[:, 0].min() >= 3.5 and pos[:, 0].max() <= 6.0 and np.all(pos[:, 1] == 0)
    assert pos[:, 2].min() >= 1.4 and pos[:, 2].max() <= 1.7
    forward = np.asarray(cams.rotation)[:, :, 2]
    assert np.all(forward[:, 0] < -0.85)  # looking back towards the origin


def test_fixed_camera_takes_see_the_clip():
    from ptjax.data.takes import make_takes
    takes = make_takes(load_clips(["walk", "dance_b"]), num_cameras=4)
    assert len(takes) == 8 and takes[0].name == "walk/cam0"
    for t in takes:
        assert t.keypoints2d.shape == t.joints_cam.shape[:2] + (2,)
        assert t.joints_cam[..., 2].min() > 2.0 and np.abs(t.keypoints2d).max() < 1.0
        # The 2D is the pure-linear projection of the camera-frame 3D.
        np.testing.assert_allclose(t.keypoints2d, 2.3 * t.joints_cam[..., :2] / t.joints_cam[..., 2:], atol=1e-5)
