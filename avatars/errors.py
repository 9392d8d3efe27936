"""Avatar and authorization errors; each message names the avatar, the reason and the fix."""

from config.errors import DhfError


class AvatarError(DhfError):
    """Unknown avatar or a broken avatar folder."""

    code = "avatar"


class LicenseError(DhfError):
    """Rendering this avatar is not authorized (missing, expired, revoked, out of scope, tampered)."""

    http_status = 403
    code = "license_refused"


class EnrollmentError(AvatarError):
    """A photo or license was refused at enrollment; the library is left unchanged."""

    code = "enrollment_refused"


class AvatarPhotoError(AvatarError):
    """The avatar's photo cannot be animated (its face is too small for the portrait)."""

    code = "avatar_photo"
