"""Several processes as one job, on JAX's own distributed runtime (`jax.distributed`).

A job of N processes (one per host on a cluster, or several on one machine) runs the same command in every process;
`initialize` connects them before anything touches a device, after which `jax.devices()` lists every process's
devices and the mesh axis `data` spans them all (`ptjax.parallel.make_mesh`). Each process computes the shards of
its own devices (its humanoids, its part of E's and H's batches); what is replicated (the networks, the motion
buffers) is identical in every process, so the host-side phases of a round run in every process alike and only the
main process (`is_main()`) writes files meant to exist once (metrics.json, TensorBoard, pictures). Checkpoints are
orbax multi-process checkpoints: every process takes part in a save and a restore.

Where the layout comes from, first match wins: the command line (`--coordinator HOST:PORT --num-processes N
--process-id I`), the environment (`JAX_COORDINATOR_ADDRESS`, `JAX_NUM_PROCESSES`, `JAX_PROCESS_ID`, as a
scheduler's job script sets them), else a single process. On CPU the collectives between processes go over gloo.

When a process dies, the others learn of it at their next collective (gloo: "connection closed by peer") or through
the coordination service's missed heartbeats (`heartbeat_timeout_s`), whichever comes first; `fail_fast` turns
either into one line naming the lost process(es) and an immediate exit instead of a hang at shutdown. When the
service declares a process dead, JAX's runtime also ends every other process by itself (a fatal log line that lists
the "unhealthy" tasks); the two race, so a survivor's log names the lost process in ptjax's line or, when the runtime
wins, in the runtime's message (`lost_in_message` reads either).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
from typing import Callable

ENV_COORDINATOR = "JAX_COORDINATOR_ADDRESS"
ENV_NUM_PROCESSES = "JAX_NUM_PROCESSES"
ENV_PROCESS_ID = "JAX_PROCESS_ID"
# JAX's default is 100 s; a dead peer should stop a job within a minute. 20 s was too short: on a loaded machine (4
# JAX processes compiling on 2 cores) the coordination service declared live processes dead. PTJAX_HEARTBEAT_TIMEOUT_S
# overrides it.
HEARTBEAT_TIMEOUT_S = 40
EXIT_LOST_PEER = 3

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Layout:
    """Where this process sits in the job."""
    coordinator: str | None
    num_processes: int
    process_id: int

    @property
    def distributed(self) -> bool:
        return self.num_processes > 1


def _int(value, name: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an integer, got {value!r}") from None


def layout(coordinator: str | None = None, num_processes: int | None = None, process_id: int | None = None,
           environ: dict | None = None) -> Layout:
    """The job layout from explicit values, else the JAX_* environment variables, else one process. ValueError
    naming the bad or missing value."""
    env = os.environ if environ is None else environ
    coordinator = coordinator or env.get(ENV_COORDINATOR) or None
    n = num_processes if num_processes is not None else env.get(ENV_NUM_PROCESSES)
    i = process_id if process_id is not None else env.get(ENV_PROCESS_ID)
    if coordinator is None and n is None and i is None:
        return Layout(None, 1, 0)
    n = 1 if n is None else _int(n, "--num-processes / JAX_NUM_PROCESSES")
    i = 0 if i is None else _int(i, "--process-id / JAX_PROCESS_ID")
    if n < 1:
        raise ValueError(f"--num-processes / JAX_NUM_PROCESSES must be >= 1, got {n}")
    if not 0 <= i < n:
        raise ValueError(f"--process-id / JAX_PROCESS_ID must be in [0, {n}), got {i}")
    if n > 1:
        if not coordinator:
            raise ValueError("a job of several processes needs the coordinator's address: --coordinator HOST:PORT "
                             f"or {ENV_COORDINATOR} (process 0 listens there)")
        host, sep, port = coordinator.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"--coordinator / {ENV_COORDINATOR} must be HOST:PORT, got {coordinator!r}")
    return Layout(coordinator, n, i)


def initialize(job: Layout, heartbeat_timeout_s: int | None = None) -> bool:
    """Connect this process to the job (a no-op for one process); must run before JAX creates its backends.
    Returns whether the job is distributed."""
    if not job.distributed:
        return False
    if heartbeat_timeout_s is None:
        raw = os.environ.get("PTJAX_HEARTBEAT_TIMEOUT_S", str(HEARTBEAT_TIMEOUT_S))
        try:
            heartbeat_timeout_s = int(raw)
        except ValueError:
            heartbeat_timeout_s = -1
        if heartbeat_timeout_s < 1:
            raise ValueError(f"PTJAX_HEARTBEAT_TIMEOUT_S must be a positive number of seconds, got {raw!r}")
    import jax
    jax.distributed.initialize(coordinator_address=job.coordinator, num_processes=job.num_processes,
                               process_id=job.process_id, heartbeat_timeout_seconds=int(heartbeat_timeout_s),
                               initialization_timeout=120)
    return True


def process_index() -> int:
    import jax
    return jax.process_index()


def is_main() -> bool:
    """Whether this process writes the job's one-per-job files (process 0)."""
    return process_index() == 0


def lost_processes() -> list[int]:
    """The processes the coordination service no longer hears from (empty when unknown or single-process). Blocks
    at most about the heartbeat timeout, the time the service takes to declare a silent process dead."""
    try:
        import jax
        from jax._src import distributed as _dist
        client = _dist.global_state.client
        if client is None or jax.process_count() == 1:
            return []
        everyone = list(range(jax.process_count()))
        live = set(client.get_live_nodes(everyone))
        return [p for p in everyone if p not in live]
    except Exception:  # noqa: BLE001 -- a diagnosis helper must not mask the original error
        return []


# How the coordination service names a dead process: in a failed barrier ("Task 1 heartbeat timeout") and in the
# error it propagates to every process ("The following tasks are unhealthy (stopped sending heartbeats):\n1\n").
_TASK_TIMED_OUT = re.compile(r"task (\d+) heartbeat timeout", re.IGNORECASE)
_UNHEALTHY_TASKS = re.compile(r"tasks are unhealthy \(stopped sending heartbeats\):\s*((?:\d+\s*)+)", re.IGNORECASE)
_LOST = re.compile(r"lost process\(es\) ([\d, ]+) of the job")


def lost_in_message(text: str) -> list[int]:
    """The processes an error message or a log names as lost (ptjax's line or the coordination service's words),
    sorted; empty when it names none. Reading the error needs no RPC, so the line is out before the runtime can end
    the process."""
    found = set()
    for pattern in (_TASK_TIMED_OUT, _UNHEALTHY_TASKS, _LOST):
        for match in pattern.finditer(text):
            found.update(int(t) for t in re.findall(r"\d+", match.group(1)))
    return sorted(found)


_PEER_FAILURE = ("connection closed by peer", "gloo", "heartbeat", "unavailable", "connection reset",
                 "socket closed", "barrier")


def is_peer_failure(error: BaseException) -> bool:
    """Whether `error` is how a collective or barrier fails when another process of the job is gone."""
    text = f"{type(error).__name__}: {error}".lower()
    return any(s in text for s in _PEER_FAILURE)


def fail_fast(run: Callable[[], int], what: str = "ptjax") -> int:
    """Run `run()`; in a distributed job, end this process at once on any error (the runtime would otherwise hold
    it at the shutdown barrier, waiting for peers that wait for it) and turn the loss of a peer into one line
    naming the lost process(es) (exit code EXIT_LOST_PEER)."""
    import jax
    if jax.process_count() == 1:
        return run()
    try:
        return run()
    except Exception as error:  # noqa: BLE001
        me, n = jax.process_index(), jax.process_count()
        if is_peer_failure(error):
            lost = lost_in_message(str(error))
            if not lost:
                logger.error("%s: process %d of %d: a collective failed (%s); asking the coordinator which process "
                             "is gone", what, me, n, str(error).splitlines()[0][:300])
                lost = lost_processes()
            who = f"process(es) {', '.join(map(str, lost))}" if lost else "another process"
            logger.error("%s: process %d of %d stops: lost %s of the job", what, me, n, who)
            os._exit(EXIT_LOST_PEER)
        if isinstance(error, (ValueError, FileNotFoundError, FileExistsError)):
            logger.error("%s: error (process %d of %d): %s", what, me, n, error)
            os._exit(2)
        logger.exception("%s: process %d of %d failed; the others stop when they miss it", what, me, n)
        os._exit(1)


def add_arguments(parser) -> None:
    """The scale-out options of a training command."""
    g = parser.add_argument_group("scale-out (JAX distributed runtime; default: the JAX_* environment, else one "
                                  "process)")
    g.add_argument("--coordinator", metavar="HOST:PORT",
                   help=f"process 0's address, the same for every process (or {ENV_COORDINATOR})")
    g.add_argument("--num-processes", type=int, metavar="N", help=f"processes in the job (or {ENV_NUM_PROCESSES})")
    g.add_argument("--process-id", type=int, metavar="I", help=f"this process, 0 .. N-1 (or {ENV_PROCESS_ID})")


def initialize_from_args(args) -> Layout:
    """`layout` from a command's parsed arguments, then `initialize`."""
    job = layout(getattr(args, "coordinator", None), getattr(args, "num_processes", None),
                 getattr(args, "process_id", None))
    initialize(job)
    return job
