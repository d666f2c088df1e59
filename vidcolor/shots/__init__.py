"""Shot detection. Importing this package registers the detectors
(``transnet``, ``histogram``); TransNetV2's package loads only when one is built."""
from . import histogram, transnet  # noqa: F401  (register "histogram" and "transnet")
from .base import ShotDetector, Transition, get_detector, list_detectors, register_detector

__all__ = ["ShotDetector", "Transition", "get_detector", "list_detectors", "register_detector"]
