"""Model licences are governance: a model whose licence is non-commercial (inswapper's, Wav2Lip's,
GPEN's, CodeFormer's) is refused for a purpose or channel the configuration marks commercial.

Why here and not in the engine: this is the same kind of decision as the avatar licence (may this
render be made for this use?), taken in request validation before any compute, and shared by the
CLI, the API and the flows.
"""

from __future__ import annotations

from config.errors import DhfError
from config.settings import FusionSettings
from vision.models import ModelFormat, ModelSpec


class ModelLicenceError(DhfError):
    """A model of the configured chain is not licensed for this render's purpose or channel."""

    http_status = 403
    code = "model_licence"


def commercial_use(purpose: str, channel: str, fusion: FusionSettings) -> str | None:
    """Why this render is commercial ("purpose 'ads'"), or None when neither is marked commercial."""
    if purpose.lower() in {p.lower() for p in fusion.commercial_purposes}:
        return f"purpose '{purpose}' (fusion.commercial_purposes)"
    if channel.lower() in {c.lower() for c in fusion.commercial_channels}:
        return f"channel '{channel}' (fusion.commercial_channels)"
    return None


def check_model_licences(
    models: list[tuple[ModelSpec, ModelFormat | None]], purpose: str, channel: str, fusion: FusionSettings
) -> None:
    """Refuse a non-commercial model for a commercial use. The format's own licence flag wins over
    what the placed lock file says (a hand-edited lock file cannot make a model commercial). A model
    without a processor format (the neural voice) is judged by its lock entry."""
    use = commercial_use(purpose, channel, fusion)
    if use is None:
        return
    for spec, fmt in models:
        if not (spec.commercial and (fmt is None or fmt.commercial)):
            licence = fmt.license if fmt is not None else spec.license
            remedy = "remove its processor from fusion.processors" if fmt is not None else "choose another voice"
            raise ModelLicenceError(
                f"model '{spec.name}' ({spec.filename}) is licensed '{licence}', which is non-commercial, "
                f"and this render is commercial by {use}; {remedy} or render for a non-commercial purpose and channel"
            )
