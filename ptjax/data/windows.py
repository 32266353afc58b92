"""Fixed-length windows over sequences, with edge padding, for training on motion and keypoints."""

from __future__ import annotations

import numpy as np


def pad_edges(x: np.ndarray, before: int, after: int, axis: int = 0) -> np.ndarray:
    """Repeat the first/last frame `before`/`after` times along `axis` (VideoPose3D's sequence padding)."""
    if before < 0 or after < 0:
        raise ValueError(f"padding must be non-negative, got ({before}, {after})")
    widths = [(0, 0)] * x.ndim
    widths[axis] = (before, after)
    return np.pad(x, widths, mode="edge")


def window_starts(num_frames: int, length: int, stride: int, pad: bool = True) -> np.ndarray:
    """Start indices of windows of `length` frames every `stride` frames.

    With `pad`, the last window starts early enough to cover the final frame (a sequence shorter than `length`
    gives one window starting at 0, to be padded); without it, only windows that fit entirely are returned.
    """
    if length < 1 or stride < 1:
        raise ValueError(f"window length and stride must be >= 1, got length={length}, stride={stride}")
    if num_frames < 1:
        raise ValueError("cannot cut windows from an empty sequence")
    if num_frames <= length:
        if not pad and num_frames < length:
            return np.zeros((0,), np.int64)
        return np.zeros((1,), np.int64)
    starts = np.arange(0, num_frames - length + 1, stride)
    if pad and starts[-1] + length < num_frames:
        starts = np.append(starts, num_frames - length)
    return starts.astype(np.int64)


def make_windows(x: np.ndarray, length: int, stride: int = 1, pad: bool = True) -> np.ndarray:
    """Cut (T, ...) into (N, length, ...) windows; a sequence shorter than `length` is edge-padded at the end."""
    x = np.asarray(x)
    starts = window_starts(len(x), length, stride, pad=pad)
    if len(x) < length:
        x = pad_edges(x, 0, length - len(x))
    if len(starts) == 0:
        return np.zeros((0, length) + x.shape[1:], x.dtype)
    index = starts[:, None] + np.arange(length)[None, :]
    return x[index]


def centered_windows(x: np.ndarray, receptive_field: int) -> np.ndarray:
    """(T, ...) -> (T, receptive_field, ...): for every frame, the window centred on it (edge padding at the ends)."""
    if receptive_field < 1 or receptive_field % 2 == 0:
        raise ValueError(f"receptive field must be a positive odd number, got {receptive_field}")
    half = receptive_field // 2
    padded = pad_edges(np.asarray(x), half, half)
    index = np.arange(len(x))[:, None] + np.arange(receptive_field)[None, :]
    return padded[index]
