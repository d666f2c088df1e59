"""Temporal consistency: chroma steadied along optical flow inside each shot; an old print's dust and
scratches found frame to frame; its grain smoothed out of the luma the colour is worked out from."""
from .defects import DefectFinder
from .grain import GrainFilter
from .smooth import MODES, TemporalSmoother

__all__ = ["MODES", "DefectFinder", "GrainFilter", "TemporalSmoother"]
