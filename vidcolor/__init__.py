"""vidcolor: colourise black-and-white film.

    import vidcolor
    vidcolor.colorize_video("film.mp4", "film_color.mp4", reference="still.jpg")
"""
__version__ = "0.1.0"

from .config import Config, load_config  # noqa: E402
from .errors import ConfigError, InputError, ModelError, OutputError, VidcolorError  # noqa: E402
from .models import get_colorizer, list_colorizers, register_colorizer  # noqa: E402
from .pipeline import RunReport, colorize, colorize_image, colorize_video  # noqa: E402

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
