"""Imitator on the bundled walking clip, sized for a 2-core CPU (the <= 20 minute learning run of issue 5)."""

import ml_collections

from ptjax.imitator.config import default_config


def get_config():
    config = ml_collections.ConfigDict()
    config.imitator = default_config()
    c = config.imitator
    c.clips = ("walk",)
    c.num_envs = 128
    c.unroll_length = 16
    c.num_minibatches = 4
    c.num_epochs = 4
    c.iterations = 1200
    c.max_minutes = 18.0
    c.log_every = 5
    c.checkpoint_every = 100
    config.lock()
    return config
