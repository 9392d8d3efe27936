"""The quality gate inside a render: observe the frames handed to the encoder, then check the encode.

Why: judging the finished MP4 meant decoding all of it again after encoding (1080p decode, scale,
two probes), which made the gate as expensive as the render. Here each frame is scaled to the
analysis size as it leaves the engine and observed on a thread of its own while the next frame is
produced and the encoder works. What the monitors saw must be what was published, so afterwards
the encode is confirmed: the container holds exactly as many frames as were observed, and every
keyframe (forced every `KEYFRAME_EVERY` frames; only those are decoded) matches the frame observed
at that index to within `MATCH_GREY_LEVELS`. The audio is read from the encoded file.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from avatars.analysis import avatar_analysis
from avatars.library import Avatar
from config import Settings
from media.video import probe, read_audio_mono, read_keyframes
from quality.errors import QualityError
from quality.evaluate import AUDIO_RATE, score_observations
from quality.observe import FrameObserver, IdentityProbe
from quality.reference import reference_of
from quality.scores import QualityReport
from vision.analysis import FaceAnalyser
from vision.avatar_analysis import AvatarAnalysis
from vision.identity import IdentityEmbedder
from vision.models import ModelRegistry

KEYFRAME_EVERY = 50  # 2 s at 25 fps: ~5 keyframes decoded per 10 s of video
CHECK_HEIGHT = 90  # keyframes are compared as grey thumbnails of this height
MATCH_GREY_LEVELS = 6.0  # mean absolute difference allowed (x264 at CRF 20, two different scalers)
QUEUE_FRAMES = 4


@dataclass(frozen=True)
class MonitorSetup:
    """What the monitors compare against: built once per render, before the first frame."""

    analyser: FaceAnalyser
    identity: IdentityProbe | None
    reference_lab: np.ndarray | None


def monitor_setup(avatar: Avatar | None, settings: Settings, analysis: AvatarAnalysis | None = None) -> MonitorSetup:
    """The monitors' models and references. The references come from the avatar's analysis (`analysis`,
    or the avatar library's cached one), so the photo is not analysed again for the monitors."""
    registry = ModelRegistry(settings.paths.models)
    analyser = FaceAnalyser(registry, settings.face.detector_min_score)
    if avatar is None:
        return MonitorSetup(analyser, None, None)
    reference = reference_of(analysis if analysis is not None else avatar_analysis(avatar, settings))
    identity = IdentityProbe(IdentityEmbedder(registry), reference.embedding, settings.quality.identity.sample_fps)
    return MonitorSetup(analyser, identity, reference.skin_lab)


def downscale(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Area-average `frame` to `size`. For an odd integer factor (1080p → 360p is 3) a box blur sampled
    at the block centres gives exactly the block means, at a third of cv2.INTER_AREA's cost (0.7 vs
    2.1 ms a 1080p frame)."""
    height, width = frame.shape[:2]
    factor = width // size[0]
    if factor % 2 == 1 and factor > 1 and width == factor * size[0] and height == factor * size[1]:
        start = factor // 2
        return np.ascontiguousarray(cv2.blur(frame, (factor, factor))[start::factor, start::factor])
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)


class EncodeMonitor:
    """Fed every frame the encoder gets (full size, BGR; the buffer may be reused after `add`)."""

    def __init__(
        self, setup: MonitorSetup, width: int, height: int, fps: float, analysis_height: int, start: int = 0
    ) -> None:
        short = min(width, height)  # the short side is analysed at `analysis_height` (portrait canvases too)
        scale = min(analysis_height, short) / short
        self.analysis_height = analysis_height
        self.size = (int(round(width * scale / 2) * 2), int(round(height * scale / 2) * 2))
        self.check_size = (int(round(width * CHECK_HEIGHT / height / 2) * 2), CHECK_HEIGHT)
        self.setup, self.width, self.height = setup, width, height
        self.start = start  # first frame's index in the whole video (a chunk of a long render starts later)
        self.observer = FrameObserver(setup.analyser, fps, setup.identity, start)
        self.thumbnails: dict[int, np.ndarray] = {}
        self.frames = 0
        self.seconds = 0.0  # time spent observing (on the monitor thread)
        self._queue: queue.Queue[np.ndarray | None] = queue.Queue(maxsize=QUEUE_FRAMES)
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._observe, name="quality-monitor", daemon=True)
        self._thread.start()

    def fresh(self) -> EncodeMonitor:
        """A new monitor with the same setup and geometry (for a second render, the fallback)."""
        return EncodeMonitor(self.setup, self.width, self.height, self.observer.fps, self.analysis_height)

    def _observe(self) -> None:
        while (frame := self._queue.get()) is not None:
            if self._failure is not None:
                continue  # keep draining: the producer must never block on a dead monitor
            start = time.perf_counter()
            try:
                self.observer.add(frame)
            except BaseException as exc:  # re-raised in the render's thread by finish()
                self._failure = exc
            self.seconds += time.perf_counter() - start

    def add(self, frame: np.ndarray) -> None:
        small = downscale(frame, self.size)
        if self.frames % KEYFRAME_EVERY == 0:  # the encoder forces a keyframe here (a chunk's count from its start)
            grey = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
            self.thumbnails[self.start + self.frames] = cv2.resize(grey, self.check_size, interpolation=cv2.INTER_AREA)
        self.frames += 1
        self._queue.put(small)

    def finish(self) -> EncodeMonitor:
        """Wait for the last frame to be observed (re-raising a monitor error)."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        if self._failure is not None:
            raise self._failure
        return self

    def export(self) -> dict[str, np.ndarray]:
        """Everything observed, as arrays: a chunk process saves it for its render (`absorb`)."""
        self.finish()
        indices = sorted(self.thumbnails)
        return self.observer.export() | {
            "frames": np.asarray(self.frames),
            "seconds": np.asarray(self.seconds),
            "thumbnail_index": np.asarray(indices, np.int64),
            "thumbnails": np.stack([self.thumbnails[i] for i in indices]) if indices else np.zeros((0, 1, 1), np.uint8),
        }

    def absorb(self, exported: dict[str, np.ndarray]) -> None:
        """Take over what another monitor observed of the frames that follow (the next chunk of a long
        render, rendered and observed in another process), as if this monitor had seen them."""
        self.observer.extend(exported)
        self.frames += int(exported["frames"])
        self.seconds += float(exported["seconds"])
        self.thumbnails.update(zip(exported["thumbnail_index"].tolist(), exported["thumbnails"], strict=True))

    def abort(self) -> None:
        self._failure = self._failure or QualityError("monitoring stopped")
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()

    def judge(
        self,
        video: Path,
        limits,
        bilabial_spans: list[tuple[float, float]] | None = None,
        still: bool = False,
    ) -> QualityReport:
        """Confirm the encode shows what was observed, then score it against the thresholds."""
        started = time.perf_counter()
        self.finish()
        video = Path(video)
        info = probe(video, count_frames=False)
        if info.frames != self.frames:
            raise QualityError(f"{video.name} holds {info.frames} frames but {self.frames} were rendered")
        self.confirm_encoded(video)
        seen = self.observer.result(info, video.name)
        audio = read_audio_mono(video, AUDIO_RATE)
        report = score_observations(
            seen, audio, limits, self.setup.reference_lab, None if still else bilabial_spans, not still
        )
        spent = self.seconds + time.perf_counter() - started
        return report.model_copy(update={"evaluation_seconds": round(spent, 2)})

    def confirm_encoded(self, video: Path) -> None:
        decoded = {index: frame for index, frame in read_keyframes(video, *self.check_size)}
        compared = sorted(set(decoded) & set(self.thumbnails))
        if not compared:
            raise QualityError(f"{video.name}: no keyframe to compare with the rendered frames (was it re-encoded?)")
        for index in compared:
            difference = float(np.mean(np.abs(decoded[index].astype(np.float32) - self.thumbnails[index])))
            if difference > MATCH_GREY_LEVELS:
                raise QualityError(
                    f"{video.name}: frame {index} as encoded differs from the rendered frame by {difference:.1f} "
                    f"grey levels (> {MATCH_GREY_LEVELS}); the encode is not what was judged"
                )


def judge_encoded(
    monitor: EncodeMonitor,
    video: Path,
    limits,
    bilabial_spans: list[tuple[float, float]] | None = None,
    still: bool = False,
) -> QualityReport:
    """The gate's stage function (a plain function, so the Prefect flow can run it as a task)."""
    return monitor.judge(video, limits, bilabial_spans, still)
