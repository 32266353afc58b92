"""Pictures of motion: 3D skeleton animations (GIF/MP4), 2D keypoint animations, static PNG strips.

Matplotlib only (Agg backend), so it works headless and in CI. Several sequences are drawn side by side, each in
its own panel with shared axis limits, so estimated, imitated and hallucinated motion can be compared.
"""

from __future__ import annotations

import os

import numpy as np

from ptjax import skeleton

_COLORS = {"left": "#1f77b4", "right": "#d62728", "center": "#333333"}


def _bone_color(child: int) -> str:
    if child in skeleton.LEFT_JOINTS:
        return _COLORS["left"]
    if child in skeleton.RIGHT_JOINTS:
        return _COLORS["right"]
    return _COLORS["center"]


def _figure(num_panels: int, projection, size: float = 3.2):
    """A row of `num_panels` axes; `projection` is one value for all panels or a list with one per panel."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    projections = projection if isinstance(projection, (list, tuple)) else [projection] * num_panels
    fig = plt.figure(figsize=(size * num_panels, size))
    axes = [fig.add_subplot(1, num_panels, i + 1, projection=projections[i]) for i in range(num_panels)]
    return fig, axes


def _writer(path: str, fps: float):
    from matplotlib import animation
    ext = os.path.splitext(path)[1].lower()
    if ext == ".gif":
        return animation.PillowWriter(fps=fps)
    if ext == ".mp4":
        try:
            import imageio_ffmpeg
            import matplotlib
            matplotlib.rcParams["animation.ffmpeg_path"] = imageio_ffmpeg.get_ffmpeg_exe()
        except ImportError as e:
            raise ValueError("writing MP4 needs the [viz] extra (imageio-ffmpeg); use a .gif path instead") from e
        return animation.FFMpegWriter(fps=fps)
    raise ValueError(f"unsupported animation format {ext!r}; use .gif or .mp4")


def _prepare(sequences: dict[str, np.ndarray], max_frames: int | None):
    if not sequences:
        raise ValueError("nothing to draw: no sequences given")
    seqs = {k: skeleton.check_joints(v, name=f"sequence {k!r}", dims=None, allow_nan=True) for k, v in sequences.items()}
    for k, v in seqs.items():
        if v.ndim != 3:
            raise ValueError(f"sequence {k!r} must be (T, 17, C), got {v.shape}")
    length = max(len(v) for v in seqs.values())
    step = 1 if max_frames is None or length <= max_frames else int(np.ceil(length / max_frames))
    return seqs, length, step


def _panel_3d(ax, title: str, seq: np.ndarray, follow_root: bool, elev: float, azim: float, radius: float = 1.0):
    """Set up a 3D skeleton panel; returns draw(frame) -> artists."""
    ax.set_title(title, fontsize=9)
    ax.view_init(elev=elev, azim=azim)
    ax.set_box_aspect((1, 1, 1))
    lines = [ax.plot([], [], [], color=_bone_color(c), lw=2)[0] for _, c in skeleton.BONES]

    def draw(frame):
        pose = seq[min(frame, len(seq) - 1)]
        center = pose[0] if follow_root and np.all(np.isfinite(pose[0])) else np.zeros(3)
        ax.set_xlim(center[0] - radius, center[0] + radius)
        ax.set_ylim(center[1] - radius, center[1] + radius)
        ax.set_zlim(0.0, 2 * radius)
        for (p, c), line in zip(skeleton.BONES, lines):
            line.set_data_3d([pose[p, 0], pose[c, 0]], [pose[p, 1], pose[c, 1]], [pose[p, 2], pose[c, 2]])
        return lines

    return draw


def _panel_2d(ax, title: str, seq: np.ndarray, invert_y: bool):
    """Set up a 2D keypoint panel on a blank frame (limits fit the whole sequence); returns draw(frame)."""
    finite = seq[np.isfinite(seq).all(-1)]
    lo, hi = (finite.min(0), finite.max(0)) if len(finite) else (np.zeros(2), np.ones(2))
    pad = 0.1 * max(hi - lo)
    ax.set_xlim(lo[0] - pad, hi[0] + pad)
    ax.set_ylim((hi[1] + pad, lo[1] - pad) if invert_y else (lo[1] - pad, hi[1] + pad))
    ax.set_aspect("equal")
    ax.set_title(title, fontsize=9)
    lines = [ax.plot([], [], color=_bone_color(c), lw=2)[0] for _, c in skeleton.BONES]

    def draw(frame):
        pose = seq[min(frame, len(seq) - 1)]
        for (p, c), line in zip(skeleton.BONES, lines):
            line.set_data([pose[p, 0], pose[c, 0]], [pose[p, 1], pose[c, 1]])
        return lines

    return draw


def animate_panels(sequences: dict[str, np.ndarray], path: str, fps: float = 30.0, max_frames: int | None = 150,
                   follow_root: bool = True, elev: float = 15.0, azim: float = -60.0, invert_y: bool = True) -> str:
    """Animate sequences side by side, each panel 3D (T, 17, 3; world, Z-up) or 2D (T, 17, 2; y down) by its shape,
    e.g. the 2D input beside the lifted 3D motion. Writes `path` (.gif or .mp4)."""
    from matplotlib import animation
    seqs, length, step = _prepare(sequences, max_frames)
    dims = [v.shape[-1] for v in seqs.values()]
    if any(d not in (2, 3) for d in dims):
        raise ValueError(f"each sequence must have 2 or 3 coordinates per joint, got {dims}")
    fig, axes = _figure(len(seqs), ["3d" if d == 3 else None for d in dims])
    draws = [_panel_3d(ax, title, seq, follow_root, elev, azim) if seq.shape[-1] == 3
             else _panel_2d(ax, title, seq, invert_y) for ax, (title, seq) in zip(axes, seqs.items())]

    def draw(frame):
        return [artist for d in draws for artist in d(frame)]

    anim = animation.FuncAnimation(fig, draw, frames=range(0, length, step), blit=False)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    anim.save(path, writer=_writer(path, fps / step))
    import matplotlib.pyplot as plt
    plt.close(fig)
    return path


def animate_3d(sequences: dict[str, np.ndarray], path: str, fps: float = 30.0, max_frames: int | None = 150,
               follow_root: bool = True, elev: float = 15.0, azim: float = -60.0) -> str:
    """Animate (T, 17, 3) world-frame (Z-up) sequences side by side; writes `path` (.gif or .mp4)."""
    _check_dims(sequences, 3, "animate_3d")
    return animate_panels(sequences, path, fps, max_frames, follow_root=follow_root, elev=elev, azim=azim)


def animate_2d(sequences: dict[str, np.ndarray], path: str, fps: float = 30.0, max_frames: int | None = 150,
               invert_y: bool = True) -> str:
    """Animate (T, 17, 2) keypoint sequences (image or normalised coordinates, y down) on a blank frame."""
    _check_dims(sequences, 2, "animate_2d")
    return animate_panels(sequences, path, fps, max_frames, invert_y=invert_y)


def _check_dims(sequences: dict[str, np.ndarray], dims: int, caller: str) -> None:
    for k, v in sequences.items():
        if np.ndim(v) < 1 or np.shape(v)[-1] != dims:
            raise ValueError(f"{caller}: sequence {k!r} has shape {np.shape(v)}; expected (T, 17, {dims})")


def save_animation(sequences: dict[str, np.ndarray], path: str, fps: float = 30.0, **kwargs) -> str:
    """Dispatch on the coordinate count: 3D skeletons or 2D keypoints."""
    dims = {np.asarray(v).shape[-1] for v in sequences.values()}
    if dims == {3}:
        return animate_3d(sequences, path, fps=fps, **kwargs)
    if dims == {2}:
        return animate_2d(sequences, path, fps=fps, **kwargs)
    raise ValueError(f"sequences must all be 3D or all 2D, got coordinate counts {sorted(dims)}")


def plot_curves(curves: dict[str, tuple[np.ndarray, np.ndarray]], path: str, xlabel: str = "", ylabel: str = "",
                title: str = "") -> str:
    """Line plot of named (x, y) curves to a PNG (training curves in reports)."""
    fig, (ax,) = _figure(1, None, size=4.5)
    for label, (x, y) in curves.items():
        ax.plot(x, y, label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if len(curves) > 1:
        ax.legend()
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=100)
    import matplotlib.pyplot as plt
    plt.close(fig)
    return path


def animate_overlay(layers: dict[str, np.ndarray], path: str, fps: float = 30.0, max_frames: int | None = 150,
                    elev: float = 15.0, azim: float = -60.0, radius: float = 1.2) -> str:
    """Several (T, 17, 3) world sequences drawn in ONE 3D panel (e.g. reference in grey under the simulation), the
    view following the last layer's root; the legend names the layers."""
    from matplotlib import animation
    seqs, length, step = _prepare(layers, max_frames)
    for name, seq in seqs.items():
        if seq.shape[-1] != 3:
            raise ValueError(f"overlay layer {name!r} must be (T, 17, 3), got {seq.shape}")
    fig, (ax,) = _figure(1, ["3d"], size=4.5)
    ax.view_init(elev=elev, azim=azim)
    ax.set_box_aspect((1, 1, 1))
    palette = ["#9a9a9a", "#1f77b4", "#d62728", "#2ca02c"]
    lines = []
    for i, (name, seq) in enumerate(seqs.items()):
        color = palette[i % len(palette)]
        layer = [ax.plot([], [], [], color=color, lw=2.5 if i else 4, alpha=0.6 if i == 0 else 1.0,
                         label=name if b == 0 else None)[0] for b in range(len(skeleton.BONES))]
        lines.append((seq, layer))
    ax.legend(loc="upper left", fontsize=8)
    follow = list(seqs.values())[-1]

    def draw(frame):
        center = follow[min(frame, len(follow) - 1), 0]
        if np.all(np.isfinite(center)):
            ax.set_xlim(center[0] - radius, center[0] + radius)
            ax.set_ylim(center[1] - radius, center[1] + radius)
        ax.set_zlim(0.0, 2 * radius)
        out = []
        for seq, layer in lines:
            pose = seq[min(frame, len(seq) - 1)]
            for (p, c), line in zip(skeleton.BONES, layer):
                line.set_data_3d([pose[p, 0], pose[c, 0]], [pose[p, 1], pose[c, 1]], [pose[p, 2], pose[c, 2]])
                out.append(line)
        return out

    anim = animation.FuncAnimation(fig, draw, frames=range(0, length, step), blit=False)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    anim.save(path, writer=_writer(path, fps / step))
    import matplotlib.pyplot as plt
    plt.close(fig)
    return path
