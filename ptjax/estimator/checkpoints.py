"""Estimator checkpoints: the whole `EstimatorState` with orbax (`ptjax.checkpoint`) plus its config as JSON.

Layout: `WORKDIR/checkpoints/<step>/` (`ptjax.checkpoint`: the state and, as its metadata, the config), so `load`
rebuilds the state template (shapes from `init` under `jax.eval_shape`, nothing computed) without being told the
architecture. `load` accepts the work directory or its `checkpoints/` folder, and a co-evolution workdir
(`ptjax coevolve`), which keeps each finished round's estimator as such a workdir under `estimator/round_<N>/`:
the last round's unless `round` is given.
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
         max_to_keep: int | None = 3, store: checkpoint.CheckpointStore | None = None) -> str:
    """Save `state` (and `config`) as checkpoint `step` (default: the state's step) under WORKDIR/checkpoints
    (through `store`, a training run's open `CheckpointStore` of that folder, when given)."""
    step = int(state.step) if step is None else int(step)
    spec_from_config(config)  # never store a config that cannot rebuild the state
    metadata = {"component": COMPONENT, "step": step, "config": config.to_dict()}
    if store is not None:
        return store.save(step, state, metadata=metadata)
    return checkpoint.save(os.path.join(workdir, "checkpoints"), step, state, metadata=metadata,
                           max_to_keep=max_to_keep)


def template(config: ml_collections.ConfigDict) -> EstimatorState:
    """The abstract state (ShapeDtypeStructs) of `config`."""
    return jax.eval_shape(lambda: init(jax.random.PRNGKey(0), config))


ROUNDS_DIR = "estimator"


def round_dir(coevolve_workdir: str, round_index: int) -> str:
    """Where a co-evolution run keeps round `round_index`'s estimator (a stand-alone estimator workdir)."""
    return os.path.join(coevolve_workdir, ROUNDS_DIR, f"round_{int(round_index)}")


def coevolution_rounds(path: str) -> list[int]:
    """The rounds whose estimator a co-evolution workdir holds (empty if `path` is not one)."""
    folder = os.path.join(path, ROUNDS_DIR)
    if not os.path.isdir(folder):
        return []
    return sorted(int(name.split("_", 1)[1]) for name in os.listdir(folder)
                  if name.startswith("round_") and name.split("_", 1)[1].isdigit())


def resolve(path: str, round_index: int | None = None) -> tuple[str, str]:
    """(estimator workdir, description) for an estimator workdir or a co-evolution workdir (`round_index`: which
    finished round; default the last). Errors name what was found instead."""
    rounds = coevolution_rounds(path)
    if rounds:
        r = rounds[-1] if round_index is None else int(round_index)
        if r not in rounds:
            raise FileNotFoundError(f"co-evolution run {path!r} holds the estimators of rounds {rounds}, not "
                                    f"round {r}")
        return round_dir(path, r), f"the estimator of round {r} of the co-evolution run {path!r}"
    if round_index is not None:
        raise ValueError(f"--round applies to a co-evolution workdir; {path!r} holds no {ROUNDS_DIR}/round_N/")
    if os.path.exists(os.path.join(path, "config.json")) and os.path.isdir(os.path.join(path, "checkpoints")):
        meta = _latest_metadata(checkpoint_dir(path))
        if meta is not None and "history" in meta:
            raise FileNotFoundError(f"{path!r} is a co-evolution run without a finished round's estimator "
                                    f"(no {ROUNDS_DIR}/round_N/: the run has not finished round 0, or it was made "
                                    "by an older ptjax); resume it with `ptjax coevolve --resume`")
    return path, f"the estimator checkpoint {path!r}"


def _latest_metadata(directory: str) -> dict | None:
    step = checkpoint.latest_step(directory) if os.path.isdir(directory) else None
    return None if step is None else checkpoint.load_metadata(directory, step)


def load(path: str, step: int | None = None, round_index: int | None = None,
         replicated_over: jax.sharding.Mesh | None = None) -> tuple[EstimatorState, ml_collections.ConfigDict]:
    """Restore (state, config) from a work directory or checkpoint folder (latest step unless `step`), or from a
    co-evolution workdir (the estimator of its last finished round, or of `round_index`); `replicated_over`: restore
    it replicated over that mesh (a multi-process job's restore needs the shardings up front)."""
    path, _ = resolve(path, round_index)
    directory = checkpoint_dir(path)
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"no estimator checkpoint directory {path!r}")
    step = checkpoint.latest_step(directory) if step is None else step
    if step is None:
        raise FileNotFoundError(f"no checkpoint found in {directory!r}")
    metadata = checkpoint.load_metadata(directory, step)
    if metadata is not None and "history" in metadata:
        raise ValueError(f"{directory!r} holds co-evolution checkpoints; pass the run's workdir (its estimator of "
                         f"each finished round is in WORKDIR/{ROUNDS_DIR}/round_N)")
    if metadata is None or "config" not in metadata:
        raise ValueError(f"{directory!r} step {step}: no metadata with the estimator config "
                         "(not an estimator checkpoint?)")
    if metadata.get("component", COMPONENT) != COMPONENT:
        raise ValueError(f"{directory!r} holds a {metadata.get('component')!r} checkpoint, not an estimator")
    config = config_from_dict(metadata["config"])
    abstract = template(config)
    if replicated_over is not None:
        sharding = jax.sharding.NamedSharding(replicated_over, jax.sharding.PartitionSpec())
        abstract = jax.tree_util.tree_map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding),
                                          abstract)
    state, _ = checkpoint.restore(directory, abstract, step)
    return state, config
