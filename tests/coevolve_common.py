"""What the co-evolution test files share: the smoke config and the device count the round-loop tests run on (2 of
the 4 conftest forces: the layout a 2-process job with 1 device each must reproduce)."""

import os

from ptjax.config import get_config

CONFIG = os.path.join(os.path.dirname(__file__), "..", "configs", "smoke.py")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEVICES = 2


def smoke_config(**overrides):
    c = get_config(CONFIG)
    for k, v in overrides.items():
        c[k] = v
    return c
