"""Still images: colour references, and photographs to colourise."""
from __future__ import annotations

import os

import cv2
import numpy as np

from ..errors import InputError, OutputError

__all__ = ["IMAGE_EXTENSIONS", "is_image_path", "read_image", "write_image"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp", ".jp2", ".pgm", ".ppm", ".pnm")
MAX_PIXELS = 40_000_000  # a 16000x16000 still would need ~3 GB as float RGB


def is_image_path(path: str | os.PathLike) -> bool:
    return os.fspath(path).lower().endswith(IMAGE_EXTENSIONS)


def read_image(path: str | os.PathLike) -> np.ndarray:
    """(H, W, 3) RGB, uint8 or uint16 as stored."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise InputError("file not found", path)
    if os.path.isdir(path):
        raise InputError("is a folder, not an image", path)
    if not os.access(path, os.R_OK):
        raise InputError("cannot be read (permission denied)", path)
    data = np.fromfile(path, dtype=np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_ANYDEPTH | cv2.IMREAD_COLOR) if data.size else None
    if img is None:
        raise InputError("not a readable image", path)
    if img.shape[0] * img.shape[1] > MAX_PIXELS:
        raise InputError(f"image is too large ({img.shape[1]}x{img.shape[0]}; at most {MAX_PIXELS // 1_000_000} megapixels)", path)
    if img.dtype not in (np.uint8, np.uint16):
        img = np.clip(img, 0, 1) if img.dtype.kind == "f" else img
        img = (img * 65535).astype(np.uint16) if img.dtype.kind == "f" else img.astype(np.uint16)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def write_image(path: str | os.PathLike, rgb: np.ndarray) -> None:
    path = os.fspath(path)
    ext = os.path.splitext(path)[1].lower() or ".png"
    if rgb.dtype == np.uint16 and ext not in (".png", ".tif", ".tiff"):
        rgb = (rgb / 257.0 + 0.5).astype(np.uint8)
    ok, buf = cv2.imencode(ext, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise OutputError(f"cannot encode an image as {ext}", path)
    try:
        buf.tofile(path)
    except OSError as e:
        raise OutputError(f"cannot write ({e.strerror})", path) from None
