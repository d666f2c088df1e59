"""Temporal consistency: chroma steadied along optical flow inside each shot."""
from .smooth import MODES, TemporalSmoother

__all__ = ["MODES", "TemporalSmoother"]
