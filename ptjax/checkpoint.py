"""Orbax checkpoints of whole state pytrees, plus a small JSON sidecar for host-side metadata.

A state is saved as one PyTree item (`StandardSave`), so any `flax.struct.dataclass` state (estimator, imitator,
hallucinator, the co-evolution state) round-trips exactly; restore needs a template of the same structure (e.g. from
`init`) to get the types and shardings back. Saves are synchronous so a SIGKILL right after `save` returns never
leaves a half-written latest checkpoint; orbax writes to a temporary folder and renames it, so a kill during a save
leaves the previous checkpoint as the latest. In a multi-process job (`ptjax.distributed`) every process calls
`save` and `restore` (orbax writes each array once) and process 0 alone writes the sidecar.
"""

from __future__ import annotations

import json
import os
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

from ptjax import training


def _manager(directory: str, max_to_keep: int | None = 3) -> ocp.CheckpointManager:
    options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True,
                                           enable_async_checkpointing=False)
    return ocp.CheckpointManager(os.path.abspath(directory), options=options)


def _is_empty(leaf) -> bool:
    return hasattr(leaf, "shape") and int(np.prod(leaf.shape)) == 0


def _fill_empty(tree):
    """Orbax cannot store zero-size arrays (MJX data has some): store a one-element placeholder instead."""
    return jax.tree_util.tree_map(lambda x: np.zeros((1,), x.dtype) if _is_empty(x) else x, tree)


def save(directory: str, step: int, state: Any, metadata: dict | None = None, max_to_keep: int | None = 3,
         check_finite: bool = True) -> str:
    """Save `state` as checkpoint `step` under `directory` (and `metadata` as JSON beside it)."""
    if check_finite:
        training.check_finite_tree(state, "values, not checkpointed,")
    with _manager(directory, max_to_keep) as mngr:
        if step in mngr.all_steps():
            mngr.delete(step)  # saving the same step again replaces it
        mngr.save(step, args=ocp.args.StandardSave(_fill_empty(state)), force=True)
        mngr.wait_until_finished()
    if metadata is not None:
        training.write_json(os.path.join(directory, f"metadata_{step}.json"), metadata)
    return os.path.join(directory, str(step))


def latest_step(directory: str) -> int | None:
    if not os.path.isdir(directory):
        return None
    with _manager(directory) as mngr:
        return mngr.latest_step()


def all_steps(directory: str) -> list[int]:
    if not os.path.isdir(directory):
        return []
    with _manager(directory) as mngr:
        return list(mngr.all_steps())


def restore(directory: str, template: Any, step: int | None = None) -> tuple[Any, int]:
    """Restore checkpoint `step` (default: latest) into the structure of `template`; returns (state, step)."""
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"no checkpoint directory {directory!r}")
    with _manager(directory) as mngr:
        step = mngr.latest_step() if step is None else step
        if step is None:
            raise FileNotFoundError(f"no checkpoint found in {directory!r}")
        abstract = jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, _fill_empty(template))
        state = mngr.restore(step, args=ocp.args.StandardRestore(abstract))
    state = jax.tree_util.tree_map(lambda t, x: t if _is_empty(t) else x, template, state)
    return state, step


def load_metadata(directory: str, step: int) -> dict | None:
    path = os.path.join(directory, f"metadata_{step}.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)
