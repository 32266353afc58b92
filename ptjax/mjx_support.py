"""`mujoco.mjx`, imported quietly (import it from here, before brax), and the jax versions MJX can run on. MJX's
import prints a notice on stdout when the optional `warp` GPU backend is absent (always the case on CPU), which
would pollute every command's output."""

import contextlib
import io

with contextlib.redirect_stdout(io.StringIO()):
    from mujoco import mjx  # noqa: F401

__all__ = ["mjx", "check_jax_supports_mjx"]


def check_jax_supports_mjx() -> None:
    """Refuse the jax releases that hang inside MJX steps on XLA:CPU (0.10.x: a CPU miscompilation, jax issue
    #39103) with a message, instead of hanging."""
    import jax
    major_minor = tuple(int(x) for x in jax.__version__.split(".")[:2] if x.isdigit())
    if major_minor == (0, 10) and jax.default_backend() == "cpu":
        raise RuntimeError(f"jax {jax.__version__} hangs inside MuJoCo MJX steps on the CPU; install jax 0.9.2 "
                           "(pip install -c constraints.txt -e .) or jax >= 0.11")
