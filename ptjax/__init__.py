"""ptjax: PoseTriplet in JAX -- estimation, physics imitation and hallucination of 3D human motion."""

__version__ = "0.1.0"
