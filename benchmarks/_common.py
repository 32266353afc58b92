"""What every benchmark prints: the device it ran on, and its JSON (to stdout and optionally a file)."""

from __future__ import annotations

import json
import os
import platform
import subprocess

import jax


def cpu_info() -> dict:
    """The host CPU's model and its widest vector extensions: XLA:CPU compiles for the CPU it runs on, so two
    machines (or `--xla_cpu_max_isa` in XLA_FLAGS) can round differently, which the RL loop amplifies."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    model = value.strip()
                elif key.strip() == "flags":
                    flags = set(value.split())
                    break
    except OSError:  # not Linux: the model from platform only
        pass
    isa = [x for x in ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_bf16", "amx_tile") if x in flags]
    return {"cpu": model, "cpu_isa": isa, "xla_flags": os.environ.get("XLA_FLAGS", "")}


def build_info() -> str | None:
    """The checkout's commit (short), "-dirty" when it holds uncommitted changes; None outside a git checkout."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        run = lambda *args: subprocess.run(["git", "-C", root, *args], capture_output=True, text=True, timeout=10,
                                           check=True).stdout.strip()
        commit = run("rev-parse", "--short", "HEAD")
        return commit + ("-dirty" if run("status", "--porcelain", "--untracked-files=no") else "")
    except (OSError, subprocess.SubprocessError):
        return None


def device_info() -> dict:
    d = jax.devices()[0]
    return {"device": f"{d.platform}: {d.device_kind}", "device_count": jax.device_count(),
            "host": platform.processor() or platform.machine(), **cpu_info(), "jax": jax.__version__,
            "commit": build_info()}


def emit(result: dict, json_path: str | None = None) -> None:
    print(json.dumps(result, indent=2))
    if json_path:
        with open(json_path, "w") as f:
            json.dump(result, f, indent=2)
