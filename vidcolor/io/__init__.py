"""The I/O boundary: PyAV decode and encode, still images."""
from .decode import LumaFrame, VideoInfo, VideoReader, open_video
from .encode import VideoWriter
from .image import is_image_path, read_image, write_image

__all__ = ["LumaFrame", "VideoInfo", "VideoReader", "VideoWriter", "open_video", "is_image_path", "read_image", "write_image"]
