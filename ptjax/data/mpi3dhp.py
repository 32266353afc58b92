"""MPI-INF-3DHP test set in PoseTriplet's by-subject pickle layout, and its protocol (PCK@150mm, AUC, P1, P2).

File: `3dhp_testset_bySub.pkl` (PoseTriplet README / issue #17: shared on the authors' drive), a dict
`{"TS1": {...}, ..., "TS6": {...}}`; per subject `valid_kps_2d_imgnorm` (N, 16, 2|3) normalised screen
coordinates, `valid_kps_3d` (N, 16, 3) camera frame in metres, `clip_idx` [[start, end), ...] contiguous clips
(keys from PoseTriplet `estimator/posegan_basementclass.py`). 16 joints in PoseTriplet order; PoseAug's
`prepare_data_3dhp.py` documents the MPI -> PoseTriplet joint reordering that produced them.

Protocol (PoseTriplet `common/loss.py::compute_PCK/compute_AUC`, after MPI's `mpii_compute_3d_pck.m`): root-relative
joints, no alignment; PCK counts joints with error < 150 mm; AUC is the mean PCK over 31 thresholds 0..150 mm;
all frames of all clips; per subject and over all frames.
"""

from __future__ import annotations

import os

from ptjax.data.datasets import EvalSequence, bysub_sequences

FILE_NAME = "3dhp_testset_bySub.pkl"
KEY_2D = "valid_kps_2d_imgnorm"
KEY_3D = "valid_kps_3d"
# The test sequences TS1-TS4 are filmed at 25 fps (TS5-TS6 at 50 fps); the clips are fed at their own rate.
FPS = 25.0


def resolve_path(data: str) -> str:
    """A file path, or a folder holding `3dhp_testset_bySub.pkl` (also under `data_cross/3dhp/`)."""
    if os.path.isdir(data):
        for candidate in (os.path.join(data, FILE_NAME), os.path.join(data, "data_cross", "3dhp", FILE_NAME),
                          os.path.join(data, "3dhp", FILE_NAME)):
            if os.path.isfile(candidate):
                return candidate
        raise FileNotFoundError(f"no {FILE_NAME} in {data!r} (also looked in data_cross/3dhp/ and 3dhp/)")
    if not os.path.exists(data):
        raise FileNotFoundError(f"{data!r} not found: pass {FILE_NAME} or a folder holding it")
    return data


def eval_sequences(data: str, unit: str = "auto") -> list[EvalSequence]:
    """The 3DHP test clips as `EvalSequence`s, grouped by subject (TS1..TS6)."""
    return bysub_sequences(resolve_path(data), KEY_2D, KEY_3D, what="MPI-INF-3DHP", fps=FPS, unit=unit)
