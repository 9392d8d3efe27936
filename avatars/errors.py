"""Avatar and authorization errors; each message names the avatar, the reason and the fix."""


class AvatarError(ValueError):
    """Unknown avatar or a broken avatar folder."""


class LicenseError(PermissionError):
    """Rendering this avatar is not authorized (missing, expired, revoked, out of scope, tampered)."""


class EnrollmentError(AvatarError):
    """A photo or license was refused at enrollment; the library is left unchanged."""
