"""`mujoco.mjx`, imported quietly: its import prints a notice on stdout when the optional `warp` GPU backend is
absent (always the case on CPU), which would pollute every command's output."""

import contextlib
import io

with contextlib.redirect_stdout(io.StringIO()):
    from mujoco import mjx  # noqa: F401

__all__ = ["mjx"]
