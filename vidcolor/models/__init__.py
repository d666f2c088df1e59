"""Colorizers: luminance in, chroma out. Importing this package registers them."""
from . import transfer  # noqa: F401  (registers "transfer")
from .registry import Colorizer, get_colorizer, list_colorizers, register_colorizer

__all__ = ["Colorizer", "get_colorizer", "list_colorizers", "register_colorizer"]
