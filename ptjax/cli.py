"""The `ptjax` command line: one subcommand per component, each registered by its own module.

Every module named in `COMMAND_MODULES` exposes `register(subparsers)`, which adds its parser(s) and sets
`func(args, overrides) -> int` as the parser default. `--config.key=value` items anywhere on the line are
collected as config overrides (ml_collections config-flag style) and handed to the command.
"""

from __future__ import annotations

import argparse
import importlib
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
)


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
    try:
        return int(args.func(args, overrides) or 0)
    except ValueError as e:
        print(f"ptjax {args.command}: error: {e}", file=sys.stderr)
        return 2
    except FileNotFoundError as e:
        print(f"ptjax {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
