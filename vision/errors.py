"""Errors of face analysis and models; each message names the problem and the fix on one line."""

from config.errors import DhfError


class VisionError(DhfError):
    """Base class: a user-facing problem in face analysis or a model file."""

    code = "vision"


class ModelError(VisionError):
    """A model file is missing or its sha256 differs from the lock file (the server needs setup)."""

    http_status = 503
    code = "model_unavailable"


class FaceNotFoundError(VisionError):
    """No face was detected where one is required."""

    code = "no_face"


class MultipleFacesError(VisionError):
    """More than one face was detected where exactly one is required."""

    code = "several_faces"
