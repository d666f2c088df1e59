"""Shot detection. Importing this package registers the detectors
(``transnet``, ``histogram``); TransNetV2's package loads only when one is built."""
from . import histogram, transnet  # noqa: F401  (register "histogram" and "transnet")
from .base import ShotDetector, Transition, build_detector, get_detector, list_detectors, register_detector

__all__ = ["ShotDetector", "Transition", "get_detector", "build_detector", "list_detectors", "register_detector",
           "detector_from_config"]


def detector_from_config(shots, device) -> "ShotDetector | None":
    """The detector a config's ``shots`` section names (None: ``off``), with its settings (the
    section of its name: ``shots.histogram``, ``shots.transnet``); ``auto`` is TransNetV2
    when the model runs on a GPU, the histogram detector on a CPU."""
    from ..errors import ConfigError

    name = shots.detector
    if name == "off":
        return None
    if name == "auto":
        name = "transnet" if device.type == "cuda" else "histogram"
    if name not in list_detectors():
        raise ConfigError(f"unknown shot detector '{name}' (valid: auto, {', '.join(list_detectors())}, off)")
    return build_detector(name, shots, device=device)
