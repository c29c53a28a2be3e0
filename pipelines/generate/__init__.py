"""Deterministic sample-data generator: writes a SPEC section 2 landing zone (``generate_landing``)."""

from .landing import GenerationSummary, generate_landing

__all__ = ["GenerationSummary", "generate_landing"]
