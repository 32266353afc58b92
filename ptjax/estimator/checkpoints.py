"""Estimator checkpoints: the whole `EstimatorState` with orbax (`ptjax.checkpoint`) plus its config as JSON.

Layout: `WORKDIR/checkpoints/<step>/` (orbax) and `WORKDIR/checkpoints/metadata_<step>.json` holding the config,
so `load` rebuilds the state template (shapes from `init` under `jax.eval_shape`, nothing computed) without being
told the architecture. `load` accepts the work directory or its `checkpoints/` folder.
"""

from __future__ import annotations

import os

import jax
import ml_collections

from ptjax import checkpoint
from ptjax.estimator.config import config_from_dict, spec_from_config
from ptjax.estimator.train import EstimatorState, init

COMPONENT = "estimator"


def checkpoint_dir(path: str) -> str:
    nested = os.path.join(path, "checkpoints")
    return nested if os.path.isdir(nested) else path


def save(workdir: str, state: EstimatorState, config: ml_collections.ConfigDict, step: int | None = None,
         max_to_keep: int | None = 3) -> str:
    """Save `state` (and `config`) as checkpoint `step` (default: the state's step) under WORKDIR/checkpoints."""
    step = int(state.step) if step is None else int(step)
    spec_from_config(config)  # never store a config that cannot rebuild the state
    metadata = {"component": COMPONENT, "step": step, "config": config.to_dict()}
    return checkpoint.save(os.path.join(workdir, "checkpoints"), step, state, metadata=metadata,
                           max_to_keep=max_to_keep)


def template(config: ml_collections.ConfigDict) -> EstimatorState:
    """The abstract state (ShapeDtypeStructs) of `config`."""
    return jax.eval_shape(lambda: init(jax.random.PRNGKey(0), config))


def load(path: str, step: int | None = None) -> tuple[EstimatorState, ml_collections.ConfigDict]:
    """Restore (state, config) from a work directory or checkpoint folder (latest step unless `step`)."""
    directory = checkpoint_dir(path)
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"no estimator checkpoint directory {path!r}")
    step = checkpoint.latest_step(directory) if step is None else step
    if step is None:
        raise FileNotFoundError(f"no checkpoint found in {directory!r}")
    metadata = checkpoint.load_metadata(directory, step)
    if metadata is None or "config" not in metadata:
        raise ValueError(f"{directory!r} step {step}: no metadata_{step}.json with the estimator config "
                         "(not an estimator checkpoint?)")
    if metadata.get("component", COMPONENT) != COMPONENT:
        raise ValueError(f"{directory!r} holds a {metadata.get('component')!r} checkpoint, not an estimator")
    config = config_from_dict(metadata["config"])
    state, _ = checkpoint.restore(directory, template(config), step)
    return state, config
