"""3DPW test set in PoseTriplet's by-subject pickle layout, and its protocol (P1 MPJPE, P2 P-MPJPE).

File: `3dpw_testset_bySub.pkl` (PoseTriplet README / issue #17: shared on the authors' drive); per subject (a 3DPW
test sequence/person) `joints_2d_imgnorm` (N, 16, 2|3) normalised screen coordinates, `valid_kps_3d` (N, 16, 3)
camera frame in metres, `clip_idx` [[start, end), ...] (keys from PoseTriplet
`estimator/posegan_basementclass.py`). 3DPW is filmed at 30 fps. Scored root-relative on the 16 joints.
"""

from __future__ import annotations

import os

from ptjax.data.datasets import EvalSequence, bysub_sequences

FILE_NAME = "3dpw_testset_bySub.pkl"
KEY_2D = "joints_2d_imgnorm"
KEY_3D = "valid_kps_3d"
FPS = 30.0


def resolve_path(data: str) -> str:
    """A file path, or a folder holding `3dpw_testset_bySub.pkl` (also under `data_cross/3dpw/`)."""
    if os.path.isdir(data):
        for candidate in (os.path.join(data, FILE_NAME), os.path.join(data, "data_cross", "3dpw", FILE_NAME),
                          os.path.join(data, "3dpw", FILE_NAME)):
            if os.path.isfile(candidate):
                return candidate
        raise FileNotFoundError(f"no {FILE_NAME} in {data!r} (also looked in data_cross/3dpw/ and 3dpw/)")
    if not os.path.exists(data):
        raise FileNotFoundError(f"{data!r} not found: pass {FILE_NAME} or a folder holding it")
    return data


def eval_sequences(data: str, unit: str = "auto") -> list[EvalSequence]:
    """The 3DPW test clips as `EvalSequence`s, grouped by subject/sequence."""
    return bysub_sequences(resolve_path(data), KEY_2D, KEY_3D, what="3DPW", fps=FPS, unit=unit)
