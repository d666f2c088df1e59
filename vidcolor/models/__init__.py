"""Colorizers: luminance in, chroma out. Importing this package registers them."""
from . import auto, exemplar, transfer, zhang  # noqa: F401  (register auto, exemplar, transfer, eccv16, siggraph17)
from .registry import Colorizer, ShotStats, get_colorizer, list_colorizers, register_colorizer

__all__ = ["Colorizer", "ShotStats", "get_colorizer", "list_colorizers", "register_colorizer"]
