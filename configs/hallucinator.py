"""Hallucinator configs: `configs/hallucinator.py` (small, CPU), `configs/hallucinator.py:paper` (the original's sizes,
GPU), `configs/hallucinator.py:large` (the larger split, ptjax.data.LARGE_TRAIN_CLIPS), `configs/hallucinator.py:tiny`
(tests and smoke runs)."""

from ptjax.hallucinator.config import default_config, large_config, paper_config, tiny_config


def get_config(arg: str = ""):
    choices = {"": default_config, "default": default_config, "paper": paper_config, "large": large_config,
               "tiny": tiny_config}
    if arg not in choices:
        raise ValueError(f"unknown hallucinator config variant {arg!r}; choose from {sorted(c for c in choices if c)}")
    return choices[arg]()
