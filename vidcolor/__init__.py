"""vidcolor: colourise black-and-white film.

    import vidcolor
    vidcolor.colorize_video("film.mp4", "film_color.mp4", reference="still.jpg")

The public names load on first use (PEP 562): ``import vidcolor`` (and the
command line's ``--help``) does not pay for torch, OpenCV and PyAV.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "Config",
    "load_config",
    "colorize",
    "colorize_video",
    "colorize_image",
    "RunReport",
    "get_colorizer",
    "list_colorizers",
    "register_colorizer",
    "VidcolorError",
    "InputError",
    "ConfigError",
    "ModelError",
    "OutputError",
]

# public name -> the module that defines it
_HOME = {
    "Config": ".config", "load_config": ".config",
    "VidcolorError": ".errors", "InputError": ".errors", "ConfigError": ".errors", "ModelError": ".errors",
    "OutputError": ".errors",
    "get_colorizer": ".models", "list_colorizers": ".models", "register_colorizer": ".models",
    "RunReport": ".pipeline", "colorize": ".pipeline", "colorize_image": ".photo", "colorize_video": ".pipeline",
}

if TYPE_CHECKING:  # what static tools see; at run time __getattr__ imports on demand
    from .config import Config, load_config
    from .errors import ConfigError, InputError, ModelError, OutputError, VidcolorError
    from .models import get_colorizer, list_colorizers, register_colorizer
    from .photo import colorize_image
    from .pipeline import RunReport, colorize, colorize_video


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home, __name__), name)
    globals()[name] = value  # once: later lookups do not come here
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
