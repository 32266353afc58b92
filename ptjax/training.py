"""What every training driver shares (the co-evolution, the imitator, the estimator, the hallucinator): one writer of
metrics (TensorBoard under WORKDIR/tensorboard plus JSON files), progress bars, and the non-finite guards.

In a multi-process job (`ptjax.distributed`) process 0 alone writes files and shows progress; the others get writers
that do nothing, so drivers call them unconditionally.
"""

from __future__ import annotations

import json
import os
from typing import Any, Iterable

import jax
import numpy as np

from ptjax import parallel

TENSORBOARD_DIR = "tensorboard"


def is_main_process() -> bool:
    """Whether this process writes the job's files (process 0 of a multi-process job, or the only one)."""
    return jax.process_index() == 0


def json_default(obj):
    """`json.dump`'s fallback for numpy and JAX scalars and arrays."""
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if hasattr(obj, "item"):
        return obj.item()
    raise TypeError(f"cannot serialise {type(obj).__name__} to JSON")


def write_json(path: str, data: Any, indent: int = 2) -> None:
    """Write `data` to `path` atomically (a reader never sees half a file); only the main process writes."""
    if not is_main_process():
        return
    tmp = path + ".tmp"
    try:
        with open(tmp, "w") as f:
            json.dump(data, f, indent=indent, default=json_default)
    except BaseException:
        os.remove(tmp)
        raise
    os.replace(tmp, path)


class MetricWriter:
    """Scalars to TensorBoard (WORKDIR/tensorboard) on the main process; a no-op elsewhere."""

    def __init__(self, workdir: str):
        self._writer = None
        if is_main_process():
            from tensorboardX import SummaryWriter
            self._writer = SummaryWriter(os.path.join(workdir, TENSORBOARD_DIR))

    def scalar(self, tag: str, value: float, step: int) -> None:
        if self._writer is not None:
            self._writer.add_scalar(tag, float(value), step)

    def scalars(self, prefix: str, values: dict, step: int, skip: Iterable[str] = ()) -> None:
        """Write each of `values` as `prefix/key`, leaving out the keys in `skip`."""
        for key, value in values.items():
            if key not in skip:
                self.scalar(f"{prefix}/{key}", value, step)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


def progress_bar(*args, disable: bool = False, **kwargs):
    """tqdm, shown on the main process only."""
    from tqdm import tqdm
    return tqdm(*args, disable=disable or not is_main_process(), dynamic_ncols=True, **kwargs)


def finite_scalars(metrics: dict, what: str, step: int, hint: str = "") -> dict[str, float]:
    """Device metrics -> host floats; FloatingPointError naming the non-finite ones."""
    out = {k: float(v) for k, v in jax.device_get(metrics).items()}
    bad = [k for k, v in out.items() if not np.isfinite(v)]
    if bad:
        raise FloatingPointError(f"{what} diverged at step {step}: non-finite {bad}" + (f"; {hint}" if hint else ""))
    return out


def check_finite_tree(tree: Any, what: str) -> None:
    """FloatingPointError naming the first leaf of `tree` holding NaN or infinity (every process of a job joins)."""
    bad = parallel.nonfinite_paths(tree)
    if bad:
        raise FloatingPointError(f"non-finite {what} at {bad[0]}")
