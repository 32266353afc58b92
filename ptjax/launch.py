"""`ptjax launch --processes N -- COMMAND ...`: a job of N processes on this machine, started the way a scheduler
starts one process per host (see `ptjax.distributed`).

Each process runs `ptjax COMMAND ...` with JAX_COORDINATOR_ADDRESS (a free local port), JAX_NUM_PROCESSES and
JAX_PROCESS_ID set, and (on CPU) PTJAX_CPU_DEVICES = the cores split over the processes unless given. Their output
is passed through, each line prefixed with `[I]`. When a process fails the others get `grace_s` to stop by
themselves (they notice the lost peer), then are killed; the launcher returns the first failure's exit code.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time

from ptjax import distributed

logger = logging.getLogger(__name__)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def process_env(base: dict, coordinator: str, num_processes: int, process_id: int,
                cpu_devices: int | None) -> dict:
    env = dict(base)
    env[distributed.ENV_COORDINATOR] = coordinator
    env[distributed.ENV_NUM_PROCESSES] = str(num_processes)
    env[distributed.ENV_PROCESS_ID] = str(process_id)
    if cpu_devices is not None:
        env["PTJAX_CPU_DEVICES"] = str(cpu_devices)
    return env


def _pump(stream, prefix: str, out) -> None:
    for line in iter(stream.readline, ""):
        out.write(prefix + line)
        out.flush()
    stream.close()


def launch(command: list[str], num_processes: int, port: int | None = None, cpu_devices: int | None = None,
           grace_s: float = 90.0, python: str | None = None, env: dict | None = None) -> int:
    """Run `ptjax *command` as `num_processes` processes of one job; returns 0 or the first failure's code."""
    if num_processes < 1:
        raise ValueError(f"--processes must be >= 1, got {num_processes}")
    if not command:
        raise ValueError("no command to launch: ptjax launch --processes N -- COMMAND [ARGS]")
    base = dict(os.environ if env is None else env)
    if cpu_devices is None and "PTJAX_CPU_DEVICES" not in base:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        cpu_devices = max(1, cores // num_processes)
    coordinator = f"localhost:{port or free_port()}"
    argv = [python or sys.executable, "-u", "-m", "ptjax.cli", *command]
    procs, pumps = [], []
    for i in range(num_processes):
        p = subprocess.Popen(argv, env=process_env(base, coordinator, num_processes, i, cpu_devices),
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
                             start_new_session=True)
        t = threading.Thread(target=_pump, args=(p.stdout, f"[{i}] ", sys.stdout), daemon=True)
        t.start()
        procs.append(p)
        pumps.append(t)
    failure, failed_at = 0, None
    try:
        while any(p.poll() is None for p in procs):
            for i, p in enumerate(procs):
                if p.returncode not in (None, 0) and not failure:
                    failure, failed_at = p.returncode, time.time()
                    logger.warning("ptjax launch: process %d exited with code %d; waiting up to %.0f s for the others "
                                   "to stop", i, p.returncode, grace_s)
            if failed_at is not None and time.time() - failed_at > grace_s:
                _kill(procs)
                break
            time.sleep(0.2)
    except KeyboardInterrupt:
        _kill(procs)
        raise
    for p in procs:
        p.wait()
    for t in pumps:
        t.join(timeout=5)
    if not failure:
        failure = next((p.returncode for p in procs if p.returncode), 0)
    return int(failure if failure > 0 else (1 if failure else 0))


def _kill(procs) -> None:
    for p in procs:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _run(args, overrides) -> int:
    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    return launch(command + list(overrides), args.processes, port=args.port, cpu_devices=args.cpu_devices,
                  grace_s=args.grace)


def register(subparsers) -> None:
    p = subparsers.add_parser("launch", help="run a command as a job of N processes on this machine (JAX's "
                                             "distributed runtime), as a scheduler would on N hosts")
    p.add_argument("--processes", type=int, required=True, metavar="N", help="processes in the job")
    p.add_argument("--port", type=int, help="the coordinator's port (default: a free one)")
    p.add_argument("--cpu-devices", type=int, metavar="K",
                   help="XLA:CPU devices per process (default: PTJAX_CPU_DEVICES, else the cores / N)")
    p.add_argument("--grace", type=float, default=90.0,
                   help="seconds the others get to stop by themselves after one process fails (default 90)")
    p.add_argument("command", nargs="...", help="-- COMMAND [ARGS], e.g. -- coevolve --config configs/smoke.py "
                                                 "--workdir runs/x")
    p.set_defaults(func=_run)
