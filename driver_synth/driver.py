"""Driver stage: viseme keyframes → motion track (NPZ) and its viewable driver video (MP4), both cached
by a hash of their inputs."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from config import MotionSettings
from config.files import atomic_path, content_hash
from driver_synth.canonical_face import SIZE, driver_frames
from driver_synth.synthesize import synthesize_track
from driver_synth.track import MotionTrack
from media.video import EncodeOptions, VideoWriter
from phoneme.artifacts import VisemeTrack

DRIVER_FORMAT_VERSION = 4  # 4: tongue, brows, eye widening, nods and sway; amplitude tempered on close shapes


@dataclass(frozen=True)
class DriverArtifact:
    key: str
    track_path: Path
    cache_hit: bool

    def track(self) -> MotionTrack:
        return MotionTrack.load(self.track_path)


def driver_key(visemes: VisemeTrack, fps: int, motion: MotionSettings, speech_key: str) -> str:
    return content_hash(
        {
            "v": DRIVER_FORMAT_VERSION,
            "visemes": asdict(visemes),
            "fps": fps,
            "motion": motion.model_dump(),
            "speech": speech_key,
        }
    )


def build_driver(
    visemes: VisemeTrack, fps: int, motion: MotionSettings, speech_key: str, cache_dir: Path
) -> DriverArtifact:
    """Synthesize (or reuse) the motion track; seeded by settings and speech so it is reproducible."""
    key = driver_key(visemes, fps, motion, speech_key)
    path = Path(cache_dir) / "driver" / f"{key}.npz"
    if path.is_file():
        return DriverArtifact(key, path, cache_hit=True)
    seed = int(content_hash({"seed": motion.seed, "speech": speech_key}, 8), 16)
    track = synthesize_track(visemes, fps, motion, seed)
    with atomic_path(path) as temporary:
        track.save(temporary)
    return DriverArtifact(key, path, cache_hit=False)


def driver_video_path(driver: DriverArtifact) -> Path:
    return driver.track_path.with_suffix(".mp4")


def render_driver_video(driver: DriverArtifact, audio: Path) -> Path:
    """The canonical face performing the track, with the speech: for people to review a driver before
    it is used on any avatar (and a C2PA ingredient of every render). Written once per track."""
    path = driver_video_path(driver)
    if path.is_file():
        return path
    track = driver.track()
    options = EncodeOptions(fps=track.fps, crf=26, preset="ultrafast", metadata=(("comment", "dhf standard driver"),))
    with atomic_path(path) as temporary, VideoWriter(temporary, SIZE, SIZE, options, audio) as out:
        for frame in driver_frames(track):
            out.write(frame)
    return path
