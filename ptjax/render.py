"""Pictures of the physics: the humanoid rendered with MuJoCo's own renderer (`mujoco.Renderer`).

Headless rendering needs a GL backend: EGL (GPUs, and Mesa's software EGL on a CPU machine) or OSMesa (Debian:
`apt-get install libosmesa6`, then `MUJOCO_GL=osmesa`). `MUJOCO_GL` is read when mujoco is first imported; ptjax
sets it to "egl" when it is unset and no display is present (`ptjax/__init__.py`). Where no backend works,
`available()` says why and callers fall back on the matplotlib skeleton drawings of `ptjax.viz`, with a warning.
"""

from __future__ import annotations

import functools
import os
import warnings

import numpy as np


@functools.lru_cache(maxsize=1)
def available() -> tuple[bool, str]:
    """(whether a MuJoCo GL context can be made here, the reason when not)."""
    try:
        import mujoco
        model = mujoco.MjModel.from_xml_string("<mujoco><worldbody><geom size='0.1'/></worldbody></mujoco>")
        renderer = mujoco.Renderer(model, 8, 8)
        renderer.close()
        return True, f"MUJOCO_GL={os.environ.get('MUJOCO_GL', '(default)')}"
    except Exception as e:  # no GL library, no display, ... : every failure means "fall back"
        return False, f"no MuJoCo GL backend (MUJOCO_GL={os.environ.get('MUJOCO_GL', '(unset)')}): " \
                      f"{type(e).__name__}: {e}"


def render_qpos(model, qpos: np.ndarray, width: int = 320, height: int = 240, distance: float = 3.5,
                azimuth: float = 120.0, elevation: float = -15.0, body: int = 1) -> np.ndarray:
    """Frames (T, height, width, 3) uint8 of `model` posed at each row of qpos (T, nq) (kinematics only), seen by a
    camera that follows `body` (the pelvis)."""
    import mujoco
    qpos = np.asarray(qpos, np.float64)
    if qpos.ndim != 2 or qpos.shape[1] != model.nq:
        raise ValueError(f"qpos must be (T, {model.nq}), got {qpos.shape}")
    if not np.isfinite(qpos).all():
        raise ValueError("qpos holds non-finite values; nothing to render")
    data = mujoco.MjData(model)
    camera = mujoco.MjvCamera()
    camera.type = mujoco.mjtCamera.mjCAMERA_TRACKING
    camera.trackbodyid = body
    camera.distance, camera.azimuth, camera.elevation = distance, azimuth, elevation
    renderer = mujoco.Renderer(model, height, width)
    frames = np.empty((len(qpos), height, width, 3), np.uint8)
    try:
        for t, q in enumerate(qpos):
            data.qpos[:] = q
            mujoco.mj_forward(model, data)
            renderer.update_scene(data, camera=camera)
            frames[t] = renderer.render()
    finally:
        renderer.close()
    return frames


def write_frames(frames: np.ndarray, path: str, fps: float = 30.0) -> str:
    """Write (T, H, W, 3) uint8 frames as a GIF (Pillow) or MP4 (the [viz] extra's imageio-ffmpeg)."""
    ext = os.path.splitext(path)[1].lower()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if ext == ".gif":
        from PIL import Image
        images = [Image.fromarray(f) for f in frames]
        images[0].save(path, save_all=True, append_images=images[1:], duration=int(round(1000 / fps)), loop=0)
    elif ext == ".mp4":
        try:
            import imageio.v2 as imageio
        except ImportError as e:
            raise ValueError("writing MP4 needs the [viz] extra (imageio, imageio-ffmpeg); use a .gif path") from e
        imageio.mimwrite(path, list(frames), fps=fps, macro_block_size=1)
    else:
        raise ValueError(f"unsupported video format {ext!r}; use .gif or .mp4")
    return path


def side_by_side(*videos: np.ndarray) -> np.ndarray:
    """Frames of several (T_i, H, W, 3) videos next to each other, each holding its last frame when shorter."""
    length = max(len(v) for v in videos)
    padded = [np.concatenate([v, np.repeat(v[-1:], length - len(v), 0)]) for v in videos]
    return np.concatenate(padded, axis=2)


def motion_video(model, simulated_qpos: np.ndarray, path: str, fps: float = 30.0,
                 reference_qpos: np.ndarray | None = None, fallback=None, max_frames: int | None = None) -> str:
    """The simulated motion rendered by MuJoCo (beside the reference's pose when given) into `path`. Without a GL
    backend: `fallback()` (a skeleton drawing) runs instead, with a warning that says why."""
    ok, reason = available()
    if not ok:
        if fallback is None:
            raise RuntimeError(reason)
        warnings.warn(f"{reason}; drawing skeletons instead (apt-get install libosmesa6 and MUJOCO_GL=osmesa, or "
                      "EGL, for MuJoCo renders)", stacklevel=2)
        return fallback()
    sl = slice(None, max_frames)
    video = render_qpos(model, simulated_qpos[sl])
    if reference_qpos is not None:
        video = side_by_side(render_qpos(model, reference_qpos[sl]), video)
    return write_frames(video, path, fps)
