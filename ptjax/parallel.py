"""Data parallelism with pmap semantics, built on `jax.shard_map` over a 1-D device mesh axis `data`.

A data-parallel state carries a leading device axis on every leaf (as under `jax.pmap`): device d holds row d.
`data_parallel(update)` turns an `update(state, *args, axis_name=...) -> (state, metrics)` written for one shard
(with `lax.pmean`/`psum` over `axis_name`) into a jitted function over the stacked state; extra arguments are
replicated. The same code runs on 1 CPU device, on `XLA_FLAGS=--xla_force_host_platform_device_count=N`, on one
GPU, and on many hosts: after `jax.distributed.initialize()`, `make_mesh()` spans every process's devices and each
process feeds its own rows of the state (see README "Multi-host").
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

AXIS = "data"


def pmean_tree(tree, axis_name: str | None):
    """`lax.pmean` of a whole pytree in one all-reduce (its leaves raveled into one vector): XLA:CPU runs one
    collective per leaf otherwise, and with two devices a gradient's ~20 collectives cost more than its products."""
    if axis_name is None:
        return tree
    flat, unravel = ravel_pytree(tree)
    return unravel(jax.lax.pmean(flat, axis_name))


def make_mesh(num_devices: int | None = None) -> Mesh:
    devices = jax.devices()
    if num_devices is not None:
        if num_devices < 1 or num_devices > len(devices):
            raise ValueError(f"asked for {num_devices} devices, {len(devices)} available")
        devices = devices[:num_devices]
    return Mesh(np.array(devices), (AXIS,))


def num_devices(mesh: Mesh) -> int:
    return mesh.devices.size


def _put(tree, sharding: NamedSharding):
    """`jax.device_put(tree, sharding)` of the leaves not already placed so: a co-evolution state is placed several
    times a phase, and its ~500 leaves cost the driver ~20 us each even where the transfer is a no-op."""
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    todo = [i for i, leaf in enumerate(leaves) if not (isinstance(leaf, jax.Array) and leaf.sharding == sharding)]
    if todo:
        for i, placed in zip(todo, jax.device_put([leaves[i] for i in todo], sharding)):
            leaves[i] = placed
    return jax.tree_util.tree_unflatten(treedef, leaves)


def split_over_devices(fn: Callable, mesh: Mesh, num_split: int = 1) -> Callable:
    """`fn(*split_args, *replicated_args)` with the first `num_split` arguments (pytrees) cut along their leading axis
    over the mesh's devices: each device runs `fn` on its slice, and every output leaf (whose leading axis is that
    of the split arguments) comes back whole on every device. Rows must be independent (vmapped per-take work: IK,
    fail-safe rollouts); their count is padded to a multiple of the device count by repeating the last row, and the
    padding is dropped. Each row equals the unsplit result up to float rounding (the split program is compiled
    apart, so not always bit for bit). One device: `fn` itself."""
    n = num_devices(mesh)
    if n == 1:
        return fn

    def gathered(*args):
        return jax.tree_util.tree_map(lambda x: jax.lax.all_gather(x, AXIS, tiled=True), fn(*args))

    def run(*args):
        split, rest = args[:num_split], args[num_split:]
        size = jax.tree_util.tree_leaves(split)[0].shape[0]
        extra = -size % n
        if extra:
            split = jax.tree_util.tree_map(lambda x: jnp.concatenate([x, jnp.repeat(x[-1:], extra, 0)]), split)
        out = jax.shard_map(gathered, mesh=mesh, in_specs=(P(AXIS),) * num_split + (P(),) * len(rest),
                            out_specs=P(), check_vma=False)(*split, *rest)
        return jax.tree_util.tree_map(lambda x: x[:size], out)

    return run


def shard_stacked(tree, mesh: Mesh):
    """Place a stacked (leading device axis) pytree with row d on device d."""
    return _put(tree, NamedSharding(mesh, P(AXIS)))


def replicate(tree, mesh: Mesh):
    return _put(tree, NamedSharding(mesh, P()))


def stack(per_device: Callable, mesh: Mesh, *args):
    """Build row d of a stacked state with `per_device(d, *args)` (traced d), placed on the mesh. Arrays go in as
    `args`, not closed over: a multi-process job's global arrays cannot be baked into a program as constants."""
    n = num_devices(mesh)
    rows = jax.jit(jax.vmap(per_device, in_axes=(0,) + (None,) * len(args)))(jnp.arange(n), *args)
    return shard_stacked(rows, mesh)


def unstack(tree, index: int = 0):
    """Row `index` of a stacked state (e.g. to checkpoint replicated parameters)."""
    return jax.tree_util.tree_map(lambda x: x[index], tree)


def per_device_update(update: Callable, mesh: Mesh, num_replicated_args: int = 1) -> Callable:
    """`(stacked_state, *replicated_args) -> (stacked_state, stacked_metrics)`: `update` on each device's row of a
    state stacked over the mesh axis, not jitted (to call inside another program, e.g. a scan of updates).

    `update(state, *args, axis_name=AXIS)` must average what should be global with lax.pmean/psum over AXIS, so
    its metrics are the same on every device."""
    def on_device(state, *args):
        state = jax.tree_util.tree_map(lambda x: x[0], state)
        new_state, metrics = update(state, *args, axis_name=AXIS)
        return (jax.tree_util.tree_map(lambda x: x[None], new_state),
                jax.tree_util.tree_map(lambda x: jnp.asarray(x)[None], metrics))

    return jax.shard_map(on_device, mesh=mesh, in_specs=(P(AXIS),) + (P(),) * num_replicated_args,
                         out_specs=(P(AXIS), P(AXIS)), check_vma=False)


def data_parallel(update: Callable, mesh: Mesh, num_replicated_args: int = 1, donate: bool = False) -> Callable:
    """Jitted `(stacked_state, *replicated_args) -> (stacked_state, metrics)` from a per-shard `update` (as
    `per_device_update`); the metrics are the first device's copy."""
    jitted = jax.jit(per_device_update(update, mesh, num_replicated_args), donate_argnums=(0,) if donate else ())

    def call(state, *args):
        new_state, metrics = jitted(state, *args)
        return new_state, jax.tree_util.tree_map(lambda x: x[0], metrics)

    return call


def agree(flag: bool) -> bool:
    """Process 0's value of a host-side decision (a time limit reached, ...), so every process of a multi-process job
    takes the same branch; the flag itself in a single process."""
    if jax.process_count() == 1:
        return bool(flag)
    from jax.experimental import multihost_utils
    return bool(multihost_utils.broadcast_one_to_all(np.asarray(bool(flag))))


@jax.jit
def _finite_flags(leaves):
    return jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves]) if leaves else jnp.ones((0,), bool)


def nonfinite_paths(tree) -> list[str]:
    """The paths of the floating-point leaves of `tree` holding a NaN or an infinity. Arrays this process cannot read
    whole (a multi-process job's global arrays) are checked by one jitted reduction that every process joins."""
    pairs = [(jax.tree_util.keystr(path), leaf) for path, leaf in jax.tree_util.tree_leaves_with_path(tree)
             if hasattr(leaf, "dtype") and jnp.issubdtype(leaf.dtype, jnp.inexact) and int(np.size(leaf))]
    local = [getattr(leaf, "is_fully_addressable", True) for _, leaf in pairs]
    flags = [bool(np.all(np.isfinite(np.asarray(leaf)))) if ok else None for (_, leaf), ok in zip(pairs, local)]
    spread = [leaf for (_, leaf), ok in zip(pairs, local) if not ok]
    if spread:  # only here does it cost a compile
        it = iter(np.asarray(_finite_flags(spread)).tolist())
        flags = [next(it) if f is None else f for f in flags]
    return [path for (path, _), ok in zip(pairs, flags) if not ok]
