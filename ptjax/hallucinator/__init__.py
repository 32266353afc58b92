"""The hallucinator: an RMI-style motion in-betweening generator that makes new, long motion from imitated motion.

    from ptjax import hallucinator as H
    config = H.default_config()
    state = H.init(jax.random.PRNGKey(0), config)
    buffer = H.make_training_windows(motions, config)
    state, metrics = jax.jit(H.update)(state, H.sample_batch(rng, buffer, 64, config))
    motions = H.sample(state, rng, start_windows, num_segments=10)
    stats = H.measures(motions, fps=config.fps, reference=training_motions)
    H.save(directory, state); state = H.load(directory)

See reference/posetriplet.md section 4 for the original this follows, and docs/hallucinator.md for usage and results.
"""

from ptjax.hallucinator.cleanup import clean_up
from ptjax.hallucinator.config import default_config, paper_config, tiny_config
from ptjax.hallucinator.evaluate import evaluate_inbetweening, hermite_baseline, interpolation_baseline
from ptjax.hallucinator.measures import measures
from ptjax.hallucinator.sample import inbetween, pool_bucket, sample, sample_from_buffer, start_windows_from
from ptjax.hallucinator.train import (Batch, HallucinatorState, init, load, make_training_windows, sample_batch, save,
                                      train_step, update)

__all__ = ["default_config", "paper_config", "tiny_config", "init", "update", "sample_batch", "make_training_windows",
           "train_step", "sample", "sample_from_buffer", "pool_bucket", "inbetween", "start_windows_from", "measures",
           "evaluate_inbetweening", "interpolation_baseline", "hermite_baseline", "clean_up", "save", "load", "Batch", "HallucinatorState"]
