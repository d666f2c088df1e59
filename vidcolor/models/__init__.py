"""Colorizers: luminance in, chroma out. Importing this package registers them."""
from . import exemplar, transfer  # noqa: F401  (register "exemplar", "transfer")
from .registry import Colorizer, get_colorizer, list_colorizers, register_colorizer

__all__ = ["Colorizer", "get_colorizer", "list_colorizers", "register_colorizer"]
