"""The machine-readable marks every render carries, applied in the render stage:

1. MP4 metadata (the implicit label of China's labeling measures: an `AIGC` tag with the label,
   producer and content id; plus plain `ai_generated`, `content_id`, avatar and license tags);
2. the invisible watermark with the content id's first 32 bits (added to the frames by the
   `watermarker` processor, fusion/watermark.py);
3. a signed C2PA manifest (governance/c2pa_signing.py), embedded after encoding.

The visible label is burnt in by the `labeler` processor. None of these has an off switch.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from avatars.library import Avatar
from config import Settings
from config.files import content_hash, file_sha256
from fusion.watermark import VERSION as WATERMARK_VERSION
from fusion.watermark import payload_of
from governance.c2pa_signing import manifest_definition, sign_init_segment, sign_mp4, signing_identity


@dataclass(frozen=True)
class Generation:
    """What the marks say about one generated video: who is shown, under which license, saying what."""

    avatar: Avatar
    license_id: str
    title: str  # the output file's name
    spoken_text: str
    voice: str
    driver_video: str = ""  # a recorded driver clip's path, when one drove the avatar
    voice_model: dict[str, str | None] = field(default_factory=dict)  # engine, version, model sha256, licence, style
    # The audit log's head when the render was authorized (entry number, hash): every signed video then
    # anchors the log outside it, and `dhf verify` refuses a log without that entry.
    audit_anchor: tuple[int, str] | None = None

    @property
    def avatar_ref(self) -> str:
        return f"{self.avatar.avatar_id}@v{self.avatar.version}"


def new_content_id(generation: Generation) -> str:
    """A fresh id per generation (the time is part of it): two renders of one text are two contents."""
    return content_hash(
        {
            "text": generation.spoken_text,
            "driver_video": generation.driver_video,
            "avatar": generation.avatar.avatar_id,
            "version": generation.avatar.version,
            "voice": generation.voice,
            "time": dt.datetime.now(dt.UTC).isoformat(),
        },
        32,
    )


def provenance_tags(generation: Generation, settings: Settings, content_id: str) -> dict[str, str]:
    """MP4 metadata that says, machine-readably, that the video is AI-generated and by what."""
    provider = settings.provenance.provider
    aigc = {
        "Label": "1",  # 1 = AI-generated content
        "ContentProducer": provider,
        "ProduceID": content_id,
        "ReservedCode1": generation.avatar_ref,
        "ContentPropagator": provider,
        "PropagateID": content_id,
    }
    avatar = generation.avatar
    return {
        "comment": f"AI-generated video (AI生成). Generator: {settings.provenance.software}; "
        f"avatar {avatar.avatar_id} v{avatar.version}; content id {content_id}",
        "description": "AI-generated synthetic talking-head video",
        "encoder_software": settings.provenance.software,
        "publisher": provider,
        "ai_generated": "true",
        "AIGC": json.dumps(aigc, ensure_ascii=False, separators=(",", ":")),
        "content_id": content_id,
        "avatar": generation.avatar_ref,
        "license_id": generation.license_id,
        "creation_time": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def _claims(
    generation: Generation, settings: Settings, content_id: str, driver: Path | None, audio: Path | None
) -> tuple[dict[str, object], dict[str, str], dict[str, object] | None]:
    """What a manifest claims about a generation (the final MP4's and a stream's init segments')."""
    avatar = generation.avatar
    watermark = {"scheme": WATERMARK_VERSION, "payload": f"{payload_of(content_id):08x}"}
    claims = {
        "ai_generated": True,
        "content_id": content_id,
        "provider": settings.provenance.provider,
        "avatar_id": avatar.avatar_id,
        "avatar_version": avatar.version,
        "avatar_photo_sha256": avatar.photo_sha256(),
        "license_id": generation.license_id,
        "driver_sha256": file_sha256(driver) if driver is not None and driver.is_file() else None,
        "audio_sha256": file_sha256(audio) if audio is not None and audio.is_file() else None,
        "visible_label": settings.label.text,
        "watermark": watermark,
    }
    if generation.voice_model:  # the voice that speaks: engine, model sha256, licence, style
        claims["voice"] = {"template": generation.voice, **generation.voice_model}
    anchor = None
    if generation.audit_anchor is not None and generation.audit_anchor[0] > 0:
        anchor = {"entry": generation.audit_anchor[0], "hash": generation.audit_anchor[1]}
        claims["audit_anchor"] = anchor
    return claims, watermark, anchor


def seal(
    video: Path, generation: Generation, settings: Settings, content_id: str, driver: Path, audio: Path
) -> dict[str, object]:
    """Sign the encoded video's C2PA manifest in place; returns what the report records about the marks."""
    start = time.perf_counter()
    claims, watermark, anchor = _claims(generation, settings, content_id, driver, audio)
    avatar = generation.avatar
    identity = signing_identity(settings)
    definition = manifest_definition(generation.title, claims, settings)
    sign_mp4(video, definition, identity, [avatar.photo, driver.with_suffix(".mp4")])
    return {
        "content_id": content_id,
        "watermark": watermark,
        "c2pa": {"signed": True, "test_certificate": identity.is_test, "algorithm": identity.algorithm},
        "sign_seconds": round(time.perf_counter() - start, 3),
        "audit_anchor": anchor,
    }


def seal_init(init: Path, generation: Generation, settings: Settings, content_id: str) -> None:
    """Sign a streamed answer's fMP4 init segment (one per encoder run) with the claims `seal` makes,
    less the driver and audio hashes, which do not exist until the answer ends. The library cannot bind
    the fragments themselves (docs/decisions.md "C2PA on a streamed answer"): the published MP4 is
    sealed whole by `seal`."""
    claims, _, _ = _claims(generation, settings, content_id, None, None)
    for unknown in ("driver_sha256", "audio_sha256"):
        claims.pop(unknown)
    definition = manifest_definition(generation.title, claims, settings)
    sign_init_segment(init, definition, signing_identity(settings), [generation.avatar.photo])
