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
    size = _header_size(path, data)
    if size is not None and size[0] * size[1] > MAX_PIXELS:
        raise InputError(f"image is too large ({size[0]}x{size[1]}; at most {MAX_PIXELS // 1_000_000} megapixels)", path)
    img = cv2.imdecode(data, cv2.IMREAD_ANYDEPTH | cv2.IMREAD_COLOR) if data.size else None
    if img is None:
        raise InputError("not a readable image", path)
    if img.shape[0] * img.shape[1] > MAX_PIXELS:
        raise InputError(f"image is too large ({img.shape[1]}x{img.shape[0]}; at most {MAX_PIXELS // 1_000_000} megapixels)", path)
    if img.dtype not in (np.uint8, np.uint16):
        img = np.clip(img, 0, 1) if img.dtype.kind == "f" else img
        img = (img * 65535).astype(np.uint16) if img.dtype.kind == "f" else img.astype(np.uint16)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def _header_size(path: str, data: np.ndarray) -> tuple[int, int] | None:
    """(width, height) from the file's header, before decoding it (a decompression bomb is refused
    unread); None when the header is not understood."""
    head = data[:64].tobytes()
    if head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR":
        return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    if head[:2] == b"BM" and len(head) >= 26:
        return int.from_bytes(head[18:22], "little", signed=True), abs(int.from_bytes(head[22:26], "little", signed=True))
    if head[:2] == b"\xff\xd8":  # JPEG: the first start-of-frame marker
        buf, i = data, 2
        while i + 9 < len(buf):
            if buf[i] != 0xFF:
                i += 1
                continue
            marker = int(buf[i + 1])
            if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7 or marker == 0xFF:
                i += 1 if marker == 0xFF else 2
                continue
            length = int(buf[i + 2]) << 8 | int(buf[i + 3])
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                return int(buf[i + 7]) << 8 | int(buf[i + 8]), int(buf[i + 5]) << 8 | int(buf[i + 6])
            i += 2 + length
        return None
    try:  # the other formats: Pillow reads their headers lazily, where it is installed
        import warnings

        from PIL import Image

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path) as im:
                return im.size
    except ImportError:
        return None
    except Exception as e:  # noqa: BLE001 - not understood here; OpenCV decides
        if type(e).__name__ == "DecompressionBombError":
            return (MAX_PIXELS + 1, 1)
        return None


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
