"""User-facing errors of the speech stage; each message names the problem and the fix."""

from config.errors import DhfError


class SpeechError(DhfError):
    """Bad text, unknown language or voice, or a TTS failure."""

    code = "invalid_speech_request"
