"""Colorizers: luminance in, chroma out. Importing this package registers them."""
from . import auto, exemplar, gallery, transfer, zhang  # noqa: F401  (register auto, exemplar, gallery, transfer, eccv16, siggraph17)
from .registry import Colorizer, get_colorizer, list_colorizers, register_colorizer

__all__ = ["Colorizer", "get_colorizer", "list_colorizers", "register_colorizer"]
