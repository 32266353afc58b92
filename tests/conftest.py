"""Test setup: 4 forced host devices (for data-parallel tests) and JAX's persistent compilation cache."""

import gc
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


def _memory_map_count() -> int:
    try:
        with open("/proc/self/maps") as f:
            return sum(1 for _ in f)
    except OSError:
        return 0


@pytest.fixture(scope="module", autouse=True)
def _release_compiled_code():
    """Every XLA:CPU executable holds memory mappings of its code; one process compiling the whole suite crosses
    Linux's vm.max_map_count (65,530) and LLVM aborts ("Unable to allocate section memory"). Dropping the jit caches
    after each module frees them; what a later module needs again comes back from the persistent cache."""
    yield
    report = bool(os.environ.get("PTJAX_TEST_REPORT_MAPS"))
    before = _memory_map_count() if report else 0
    jax.clear_caches()
    gc.collect()
    if report:
        print(f"\n[memory maps: {before} -> {_memory_map_count()}]")


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
