"""Test setup: 4 forced host devices (for data-parallel tests) and JAX's persistent compilation cache."""

import os

# Must be set before JAX initialises its CPU backend.
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402

_CACHE = os.environ.get("PTJAX_TEST_JAX_CACHE",
                        os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), ".jax_cache"))
jax.config.update("jax_compilation_cache_dir", _CACHE)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


import pytest  # noqa: E402


@pytest.fixture(scope="session")
def humanoid_body():
    """The default humanoid, built once for every test module."""
    from ptjax.imitator import humanoid
    return humanoid.build()


@pytest.fixture(scope="session")
def walk_reference(humanoid_body):
    from ptjax.data import load_clips
    from ptjax.imitator import retarget
    return retarget.retarget(humanoid_body, load_clips(["walk"])["walk"])


def small_imitator_config():
    """The imitator of configs/smoke.py on the walk clip: tests, the smoke co-evolution and the examples share these
    shapes, so compiled code is reused through the compilation cache."""
    from ptjax.config import get_config
    c = get_config(os.path.join(os.path.dirname(__file__), "..", "configs", "smoke.py")).imitator
    c.clips = ("walk",)
    c.iterations = 3
    c.log_every = 1
    c.checkpoint_every = 2
    c.num_devices = 1
    return c
