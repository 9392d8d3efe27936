"""An avatar performing a given motion track: for the gallery, for test drivers, for looking.

Why not a render: a render starts from text (or a recorded clip) and runs every stage with its
quality gate; a preview starts from a motion track someone built by hand (every viseme held in turn,
a head sweeping ±20°) to see what the engine does with it. It is still a generation of a person's
face: it is authorized (purpose `test`) and audited like a render, and it carries the visible label
and the watermark (the engine always adds them).
"""

from __future__ import annotations

import getpass
from pathlib import Path

import numpy as np

from avatars.library import AvatarLibrary
from config import Settings
from config.files import atomic_path, file_sha256
from driver_synth.track import MotionTrack
from fusion.engine import FusionEngine, RenderOptions
from governance.audit import AuditLog, AuditRecord
from governance.authorization import authorize
from media.video import EncodeOptions, VideoWriter
from pipeline.stages import avatar_look, avatar_stage

PREVIEW_PURPOSE = "test"


def preview_engine(avatar_id: str, settings: Settings, full_frame: bool = False) -> FusionEngine:
    """The fusion engine of an authorized avatar (checked for the `test` purpose on the demo channel)."""
    avatar = AvatarLibrary.from_settings(settings.paths).get(avatar_id)
    authorize(avatar, "en", "demo", PREVIEW_PURPOSE, AuditLog.from_settings(settings))
    analysis = avatar_stage(avatar, settings)
    return FusionEngine.for_avatar(avatar_look(avatar, analysis), settings, RenderOptions(0, full_frame=full_frame))


def output_box(engine: FusionEngine, indices: tuple[int, ...], pad: float) -> tuple[int, int, int, int]:
    """Where the given landmarks of the avatar's rest pose are in the engine's output frames."""
    names = [processor.name for processor in engine.chain]
    upscaler, compositor = engine.chain[names.index("upscaler")], engine.chain[names.index("compositor")]
    points = engine.reenactor.landmarks[list(indices), :2] * upscaler.scale + [compositor.left, compositor.top]
    centre, half = points.mean(0), (points.max(0) - points.min(0)) / 2 * (1 + pad)
    x0, y0 = np.floor(centre - half).astype(int)
    x1, y1 = np.ceil(centre + half).astype(int)
    return int(x0), int(y0), int(x1), int(y1)


def preview_frames(avatar_id: str, track: MotionTrack, settings: Settings) -> list[np.ndarray]:
    """The finished frames (labeled, watermarked) of the avatar performing `track`; audited."""
    engine = preview_engine(avatar_id, settings)
    frames = [frame.copy() for frame in engine.frames(track)]
    _audit(avatar_id, settings, None, track.frame_count)
    return frames


def _audit(avatar_id: str, settings: Settings, output: Path | None, frames: int) -> None:
    AuditLog.from_settings(settings).append(
        AuditRecord(
            action="preview",
            outcome="success",
            user=getpass.getuser(),
            avatar_id=avatar_id,
            output=str(output) if output else None,
            output_sha256=file_sha256(Path(output)) if output else None,
            extra={"frames": frames, "purpose": PREVIEW_PURPOSE},
        )
    )


def render_preview(
    avatar_id: str, track: MotionTrack, output: Path, settings: Settings, audio: Path | None = None
) -> Path:
    """Encode the avatar performing `track` (with `audio`, or silence) to `output`; audited."""
    engine = preview_engine(avatar_id, settings)
    video = settings.video
    metadata = (("comment", "dhf preview"),)
    options = EncodeOptions(fps=track.fps, crf=video.crf, preset=video.preset, metadata=metadata)
    size = (video.width, video.height)
    with atomic_path(Path(output)) as temporary, VideoWriter(temporary, *size, options, audio) as out:
        for frame in engine.frames(track):
            out.write(frame)
    _audit(avatar_id, settings, Path(output), track.frame_count)
    return Path(output)


def sweep_track(fps: int, seconds: float, degrees: float = 20.0, speaking: bool = True) -> MotionTrack:
    """A head turning, nodding and tilting through ±`degrees` (out of phase), the mouth talking and
    the eyes blinking: a stand-in for a phone-camera clip of someone talking with their head."""
    count = round(fps * seconds)
    t = np.arange(count) / fps
    channels = {
        "head_roll": degrees * np.sin(2 * np.pi * t / seconds),
        "head_pitch": 0.75 * degrees * np.sin(4 * np.pi * t / seconds + 0.7),
        "head_yaw": 0.75 * degrees * np.sin(2 * np.pi * t / seconds + 1.9),
        "blink": np.clip(1 - np.abs(t % 2.7 - 1.5) / 0.1, 0, 1),
    }
    if speaking:
        channels["jaw_open"] = 0.45 * (1 + np.sin(2 * np.pi * 3.1 * t)) / 2
        channels["lip_closure"] = (np.sin(2 * np.pi * 0.9 * t) > 0.93).astype(float)
    return MotionTrack.from_channels(fps, channels)
