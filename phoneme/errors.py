"""User-facing errors of the speech stage; each message names the problem and the fix."""


class SpeechError(ValueError):
    """Bad text, unknown language or voice, or a TTS failure."""
