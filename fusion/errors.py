"""Errors the fusion engine raises; each message names the problem and the fix on one line."""


class FusionError(RuntimeError):
    """Base class: a user-facing problem in face analysis, models or frame I/O."""


class ModelError(FusionError):
    """A model file is missing or its sha256 differs from the lock file."""


class FaceNotFoundError(FusionError):
    """No face was detected where one is required."""


class MultipleFacesError(FusionError):
    """More than one face was detected where exactly one is required."""


class MediaError(FusionError):
    """A video or image file cannot be read, or ffmpeg failed."""
