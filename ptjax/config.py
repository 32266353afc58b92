"""Loading `ml_collections` config files by path and applying `--config.a.b=value` overrides.

A config file is a Python file with `get_config()` returning a `ConfigDict` (as in the Flax examples). A path may
carry an argument after a colon (`configs/demo.py:fast`), passed to `get_config(arg)`.
Overrides keep each field's type: `--config.imitator.num_envs=4096` stays an int, and a misspelt key or a value of
the wrong type is a `ValueError` that names it. The components' default configs are locked, so a misspelt key inside
a config file is an error too (`load_config` names the file).
"""

from __future__ import annotations

import ast
import importlib.util
import os
import sys

import ml_collections

OVERRIDE_PREFIX = "--config."


def load_config(spec: str) -> ml_collections.ConfigDict:
    path, _, arg = spec.partition(":")
    if not os.path.isfile(path):
        raise ValueError(f"config file {path!r} not found")
    module_name = f"_ptjax_config_{abs(hash(os.path.abspath(path)))}"
    module_spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(module_spec)
    # Config files may import their siblings (configs/demo.py imports configs/smoke.py's helpers).
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
    try:
        module_spec.loader.exec_module(module)
    finally:
        sys.path.pop(0)
    if not hasattr(module, "get_config"):
        raise ValueError(f"config file {path!r} defines no get_config()")
    try:
        config = module.get_config(arg) if arg else module.get_config()
    except AttributeError as e:  # a locked ConfigDict refuses a key it does not have
        raise ValueError(f"{path}: {e}") from None
    if not isinstance(config, ml_collections.ConfigDict):
        raise ValueError(f"{path}: get_config() must return an ml_collections.ConfigDict")
    return config


def _parse_value(text: str, current, key: str):
    if isinstance(current, bool):
        lowered = text.strip().lower()
        if lowered in ("true", "1", "yes"):
            return True
        if lowered in ("false", "0", "no"):
            return False
        raise ValueError(f"config override {key}={text!r}: expected a boolean")
    if isinstance(current, str) or current is None:
        try:
            value = ast.literal_eval(text)
            return value if current is None else text
        except (ValueError, SyntaxError):
            return text
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError) as e:
        raise ValueError(f"config override {key}={text!r}: not a valid {type(current).__name__}") from e
    if isinstance(current, float) and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if isinstance(current, (tuple, list)) and isinstance(value, (tuple, list)):
        value = type(current)(value)
    if not isinstance(value, type(current)) or (isinstance(value, bool) and not isinstance(current, bool)):
        raise ValueError(f"config override {key}={text!r}: expected {type(current).__name__}, "
                         f"got {type(value).__name__}")
    return value


def apply_overrides(config: ml_collections.ConfigDict, overrides: list[str]) -> ml_collections.ConfigDict:
    """Apply `--config.a.b=value` (or `a.b=value`) strings to a copy of `config`."""
    config = ml_collections.ConfigDict(config.to_dict(preserve_field_references=True))  # shared fields stay shared
    for item in overrides:
        text = item[len(OVERRIDE_PREFIX):] if item.startswith(OVERRIDE_PREFIX) else item
        key, sep, raw = text.partition("=")
        if not sep:
            raise ValueError(f"config override {item!r} must look like --config.key=value")
        node = config
        parts = key.split(".")
        for i, part in enumerate(parts[:-1]):
            if part not in node or not isinstance(node[part], ml_collections.ConfigDict):
                raise ValueError(f"config override {item!r}: no section {'.'.join(parts[:i + 1])!r}")
            node = node[part]
        leaf = parts[-1]
        if leaf not in node:
            raise ValueError(f"config override {item!r}: unknown key {key!r} "
                             f"(known here: {sorted(node.keys())})")
        node[leaf] = _parse_value(raw, node[leaf], key)
    config.lock()
    return config


def split_overrides(argv: list[str]) -> tuple[list[str], list[str]]:
    """Separate `--config.x=y` items (also `--config.x y`) from the other arguments."""
    overrides, rest = [], []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg.startswith(OVERRIDE_PREFIX):
            if "=" not in arg and i + 1 < len(argv):
                arg = f"{arg}={argv[i + 1]}"
                i += 1
            overrides.append(arg)
        else:
            rest.append(arg)
        i += 1
    return overrides, rest


def get_config(spec: str, overrides: list[str] = ()) -> ml_collections.ConfigDict:
    return apply_overrides(load_config(spec), list(overrides))
