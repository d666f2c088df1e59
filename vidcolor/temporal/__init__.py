"""Temporal consistency: chroma steadied along optical flow inside each shot; an old print's dust and
scratches found frame to frame."""
from .defects import DefectFinder
from .smooth import MODES, TemporalSmoother

__all__ = ["MODES", "DefectFinder", "TemporalSmoother"]
