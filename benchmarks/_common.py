"""What every benchmark prints: the device it ran on, and its JSON (to stdout and optionally a file)."""

from __future__ import annotations

import json
import platform

import jax


def device_info() -> dict:
    d = jax.devices()[0]
    return {"device": f"{d.platform}: {d.device_kind}", "device_count": jax.device_count(),
            "host": platform.processor() or platform.machine(), "jax": jax.__version__}


def emit(result: dict, json_path: str | None = None) -> None:
    print(json.dumps(result, indent=2))
    if json_path:
        with open(json_path, "w") as f:
            json.dump(result, f, indent=2)
