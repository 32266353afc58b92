"""The `ptjax` command line: one subcommand per component, each registered by its own module.

Every module named in `COMMAND_MODULES` exposes `register(subparsers)`, which adds its parser(s) and sets
`func(args, overrides) -> int` as the parser default. `--config.key=value` items anywhere on the line are
collected as config overrides (ml_collections config-flag style) and handed to the command.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from ptjax.config import split_overrides

COMMAND_MODULES = (
    "ptjax.imitator.cli",
    "ptjax.data.cli",
    "ptjax.lift",
    "ptjax.evaluate",
    "ptjax.estimator.cli",
    "ptjax.hallucinator.cli",
    "ptjax.coevolve_cli",
    "ptjax.launch",
)


def cpu_device_count() -> int:
    """How many XLA:CPU devices the CLI asks for: PTJAX_CPU_DEVICES, else the largest power of two not above the
    usable cores (configs size batches and env counts in powers of two, which must split evenly over devices)."""
    value = os.environ.get("PTJAX_CPU_DEVICES", "")
    if value:
        if not value.isdigit() or int(value) < 1:
            raise ValueError(f"PTJAX_CPU_DEVICES must be a positive integer, got {value!r}")
        return int(value)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return 1 << (max(cores, 1).bit_length() - 1)


def use_cpu_cores() -> None:
    """One XLA:CPU device per core, so that the data-parallel steps (imitator, co-evolution) run one shard per core:
    a single XLA:CPU device runs the batched physics on about one core (MJX tracking env at 512 envs on 2 cores:
    5.8k control steps/s on 1 device, 10.5k on 2; benchmarks/physics.py). Accelerator backends are unaffected
    (the CPU device count only matters when the CPU is the default backend). An explicit
    --xla_force_host_platform_device_count in XLA_FLAGS wins."""
    if "xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", ""):
        return
    import jax
    try:
        jax.config.update("jax_num_cpu_devices", cpu_device_count())
    except RuntimeError:  # a backend is already up (ptjax used as a library in this process): keep its devices
        pass


def show_progress_messages(level: int = logging.INFO) -> None:
    """ptjax's own messages (loggers under "ptjax": resumes, round tables, warnings) as plain lines on stderr, beside
    the progress bars. Only the "ptjax" logger is touched: the commands are the application here, but JAX's and
    absl's loggers keep their own settings. A library user configures logging as they like instead."""
    root = logging.getLogger("ptjax")
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        root.addHandler(handler)
    root.setLevel(level)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ptjax",
        description="PoseTriplet in JAX: estimate, imitate and hallucinate 3D human motion.",
        epilog="Config overrides: add --config.section.key=value to any command that takes --config.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    overrides, rest = split_overrides(argv)
    parser = build_parser()
    args = parser.parse_args(rest)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    show_progress_messages()
    try:
        use_cpu_cores()
        if hasattr(args, "coordinator"):  # a command that can run as one process of a larger job
            from ptjax import distributed
            distributed.initialize_from_args(args)
            return int(distributed.fail_fast(lambda: args.func(args, overrides), f"ptjax {args.command}") or 0)
        return int(args.func(args, overrides) or 0)
    except ValueError as e:
        print(f"ptjax {args.command}: error: {e}", file=sys.stderr)
        return 2
    except FileNotFoundError as e:
        print(f"ptjax {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
