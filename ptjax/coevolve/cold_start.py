"""Round 0's references: random smooth root trajectories walked by the body at its rest pose."""

from __future__ import annotations

import numpy as np


def random_root_trajectories(rng: np.random.Generator, num: int, frames: int, fps: float, cfg) -> list[dict]:
    """PoseTriplet's cold start (`gen_random_traj.py`): a smooth 2D curve through random points in a square whose
    side grows linearly across takes, walked at a random speed, the hips bobbing with a random period, facing the
    direction of travel. Returns [{"xy" (T, 2), "bob" (T,) metres below the rest height, "yaw" (T,)}]."""
    from scipy.interpolate import CubicSpline
    from scipy.ndimage import gaussian_filter1d

    out = []
    scales = np.linspace(cfg.scale_start, cfg.scale_end, num)
    t = np.arange(frames) / fps
    for i in range(num):
        pts = rng.uniform(0, 1, (cfg.num_points, 2)) * scales[i]
        if rng.uniform() < 0.5:
            pts[:, 1] = -pts[:, 1]
        chord = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(pts, axis=0), axis=1))])
        spline = CubicSpline(chord, pts, bc_type="natural")
        dense_s = np.linspace(0, chord[-1], 2000)
        dense = spline(dense_s)
        arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(dense, axis=0), axis=1))])
        speed = rng.uniform(*cfg.speed)
        dist = np.minimum(speed * t, arc[-1])
        xy = np.stack([np.interp(dist, arc, dense[:, k]) for k in range(2)], -1)
        # Round the spline's sharp turns (the original's Bezier corners are rounded too), then face the direction
        # of travel, turning at most `max_turn_rate` rad/s (a walker does not spin on the spot).
        xy = gaussian_filter1d(xy - xy[0], sigma=cfg.smoothing_s * fps, axis=0, mode="nearest")
        tangent = np.gradient(xy, axis=0)
        moving = np.linalg.norm(tangent, axis=1) > 1e-6
        last = np.maximum.accumulate(np.where(moving, np.arange(frames), 0))  # stopped: keep the last heading
        wanted = np.unwrap(np.arctan2(tangent[last, 1], tangent[last, 0]))
        yaw = np.empty(frames)
        yaw[0] = wanted[0]
        step = cfg.max_turn_rate / fps
        for k in range(1, frames):
            yaw[k] = yaw[k - 1] + np.clip(wanted[k] - yaw[k - 1], -step, step)
        amp, period = rng.uniform(*cfg.bob_amplitude), rng.uniform(*cfg.bob_period)
        bob = amp * (1 - np.cos(2 * np.pi * np.arange(frames) / period))
        out.append({"xy": xy, "bob": bob, "yaw": yaw})
    return out


def cold_start_qpos(rest_qpos: np.ndarray, traj: dict) -> np.ndarray:
    """(T, nq) references: the rest pose carried along a root trajectory."""
    n = len(traj["xy"])
    q = np.repeat(np.asarray(rest_qpos, np.float64)[None], n, 0)
    q[:, 0:2] = traj["xy"]
    q[:, 2] = q[:, 2] - traj["bob"]
    half = traj["yaw"] / 2
    q[:, 3:7] = np.stack([np.cos(half), np.zeros(n), np.zeros(n), np.sin(half)], -1)
    return q

