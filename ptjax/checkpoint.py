"""Orbax checkpoints of whole state pytrees with their metadata.

`CheckpointStore(directory)` keeps one orbax `CheckpointManager` open for a run: each step is a `Composite` of the
state (a PyTree item, `StandardSave`) and its host-side metadata (a JSON item), written together. Any
`flax.struct.dataclass` state (estimator, imitator, hallucinator, the co-evolution state) round-trips exactly;
restore needs a template of the same structure (e.g. from `init`, or `jax.eval_shape` of it) to get the types and
shardings back. Saves are synchronous so a SIGKILL right after `save` returns never leaves a half-written latest
checkpoint; orbax writes to a temporary folder and renames it, so a kill during a save leaves the previous checkpoint
as the latest. In a multi-process job (`ptjax.distributed`) every process calls `save` and `restore` (orbax writes
each array once, and the JSON item from process 0).

Checkpoints written before the metadata moved into the store (a step folder with one `default` item, the metadata in
`metadata_<step>.json` beside it) are read as well. The module-level `save`, `restore`, `latest_step`, `all_steps`
and `load_metadata` open a store for one call.
"""

from __future__ import annotations

import json
import os
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

from ptjax import training

ITEMS = ("state", "metadata")
_LEGACY_ITEM = "default"


def _options(max_to_keep: int | None) -> ocp.CheckpointManagerOptions:
    return ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True, enable_async_checkpointing=False)


class CheckpointStore:
    """A run's checkpoint folder, open for the run (`with CheckpointStore(dir) as store: ...`, or `close()`)."""

    def __init__(self, directory: str, max_to_keep: int | None = 3):
        self.directory = os.path.abspath(directory)
        self._manager = ocp.CheckpointManager(self.directory, options=_options(max_to_keep), item_names=ITEMS)

    def __enter__(self) -> "CheckpointStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._manager.close()

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def all_steps(self) -> list[int]:
        return sorted(self._manager.all_steps())

    def save(self, step: int, state: Any, metadata: dict | None = None, check_finite: bool = True) -> str:
        """Save `state` (and `metadata`, a JSON-able dict) as checkpoint `step`; saving a step again replaces it."""
        if check_finite:
            training.check_finite_tree(state, "values, not checkpointed,")
        if step in self._manager.all_steps():
            self._manager.delete(step)
        items = {"state": ocp.args.StandardSave(_fill_empty(state))}
        if metadata is not None:
            items["metadata"] = ocp.args.JsonSave(json.loads(json.dumps(metadata, default=training.json_default)))
        self._manager.save(step, args=ocp.args.Composite(**items), force=True)
        self._manager.wait_until_finished()
        return os.path.join(self.directory, str(step))

    def _legacy(self, step: int) -> bool:
        return os.path.isdir(os.path.join(self.directory, str(step), _LEGACY_ITEM))

    def restore(self, template: Any, step: int | None = None) -> tuple[Any, int]:
        """Checkpoint `step` (default: the latest) in the structure of `template`; returns (state, step)."""
        step = self.latest_step() if step is None else step
        if step is None:
            raise FileNotFoundError(f"no checkpoint found in {self.directory!r}")
        abstract = jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, _fill_empty(template))
        if self._legacy(step):
            with ocp.CheckpointManager(self.directory, options=_options(None)) as legacy:
                state = legacy.restore(step, args=ocp.args.StandardRestore(abstract))
        else:
            state = self._manager.restore(step, args=ocp.args.Composite(
                state=ocp.args.StandardRestore(abstract))).state
        return jax.tree_util.tree_map(lambda t, x: t if _is_empty(t) else x, template, state), step

    def metadata(self, step: int) -> dict | None:
        """The metadata saved with checkpoint `step` (None if it was saved without)."""
        if self._legacy(step):
            path = os.path.join(self.directory, f"metadata_{step}.json")
            if not os.path.exists(path):
                return None
            with open(path) as f:
                return json.load(f)
        if not os.path.isdir(os.path.join(self.directory, str(step), "metadata")):
            return None
        return self._manager.restore(step, args=ocp.args.Composite(metadata=ocp.args.JsonRestore())).metadata


def _is_empty(leaf) -> bool:
    return hasattr(leaf, "shape") and int(np.prod(leaf.shape)) == 0


def _fill_empty(tree):
    """Orbax cannot store zero-size arrays (MJX data has some): store a one-element placeholder instead."""
    return jax.tree_util.tree_map(lambda x: np.zeros((1,), x.dtype) if _is_empty(x) else x, tree)


def save(directory: str, step: int, state: Any, metadata: dict | None = None, max_to_keep: int | None = 3,
         check_finite: bool = True) -> str:
    """`CheckpointStore.save` for one call."""
    with CheckpointStore(directory, max_to_keep) as store:
        return store.save(step, state, metadata, check_finite)


def latest_step(directory: str) -> int | None:
    if not os.path.isdir(directory):
        return None
    with CheckpointStore(directory) as store:
        return store.latest_step()


def all_steps(directory: str) -> list[int]:
    if not os.path.isdir(directory):
        return []
    with CheckpointStore(directory) as store:
        return store.all_steps()


def restore(directory: str, template: Any, step: int | None = None) -> tuple[Any, int]:
    """Restore checkpoint `step` (default: latest) into the structure of `template`; returns (state, step)."""
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"no checkpoint directory {directory!r}")
    with CheckpointStore(directory) as store:
        return store.restore(template, step)


def load_metadata(directory: str, step: int) -> dict | None:
    if not os.path.isdir(directory):
        return None
    with CheckpointStore(directory) as store:
        return store.metadata(step)
