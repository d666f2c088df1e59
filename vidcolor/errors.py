"""Errors raised by vidcolor.

The library raises; only ``vidcolor.cli`` prints and exits. Every error that
concerns a file names it, so the CLI can show one line that says which file
is wrong and what is wrong with it::

    VidcolorError
     ├── InputError (ValueError)        an input video, image, map or reference is unusable
     ├── ConfigError (ValueError)       a config file or option value is invalid
     ├── ModelError (RuntimeError)      unknown colorizer, missing or mismatched weights
     └── OutputError (OSError)          the output cannot be written
"""
from __future__ import annotations

import os

__all__ = ["VidcolorError", "InputError", "ConfigError", "ModelError", "OutputError"]


class VidcolorError(Exception):
    """Base of every error vidcolor raises on purpose."""

    def __init__(self, message: str, path: str | os.PathLike | None = None):
        self.message = message
        self.path = None if path is None else os.fspath(path)
        super().__init__(f"{self.path}: {message}" if self.path else message)


class InputError(VidcolorError, ValueError):
    """An input (video, still, reference map) cannot be used."""


class ConfigError(VidcolorError, ValueError):
    """A configuration file or option is invalid."""


class ModelError(VidcolorError, RuntimeError):
    """A colorizer cannot be built or run."""


class OutputError(VidcolorError, OSError):
    """The output cannot be written."""
