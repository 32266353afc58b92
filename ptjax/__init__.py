"""ptjax: PoseTriplet in JAX -- estimation, physics imitation and hallucination of 3D human motion."""

import os as _os

# MuJoCo picks its GL backend when first imported: headless machines (no display) render through EGL, which works
# on GPUs and, through Mesa, on CPUs; set MUJOCO_GL yourself to choose another (ptjax.render).
if "MUJOCO_GL" not in _os.environ and not _os.environ.get("DISPLAY"):
    _os.environ["MUJOCO_GL"] = "egl"

__version__ = "0.1.0"
