"""Errors the fusion engine raises; each message names the problem and the fix on one line."""

from config.errors import DhfError


class FusionError(DhfError):
    """Base class: a user-facing problem in face analysis, models or rendering."""

    code = "fusion"


class ModelError(FusionError):
    """A model file is missing or its sha256 differs from the lock file (the server needs setup)."""

    http_status = 503
    code = "model_unavailable"


class FaceNotFoundError(FusionError):
    """No face was detected where one is required."""

    code = "no_face"


class MultipleFacesError(FusionError):
    """More than one face was detected where exactly one is required."""

    code = "several_faces"
