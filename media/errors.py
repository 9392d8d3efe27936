"""The error of the media layer."""

from config.errors import DhfError


class MediaError(DhfError):
    """A video, image or audio file cannot be read or written, or ffmpeg is missing or failed."""

    code = "media"
