"""Shot detection. Importing this package registers the detectors."""
from .base import ShotDetector, Transition, get_detector, list_detectors, register_detector

__all__ = ["ShotDetector", "Transition", "get_detector", "list_detectors", "register_detector"]
