"""The processor contract shared by every built-in and plug-in processor.

A processor is one module with a typed `Options` (what the user configures), a model table (which
model files it can run, in vision/models.py's `ModelFormat`), and three steps, like MediaPipe Tasks'
Options → create → close: `prepare(base, setup)` once (the static base frame of the previous stage,
and a `ProcessorSetup` with the model registry, the execution providers, the avatar and the audio),
`process_frame(frame, context)` per frame, and `close()` at the end (sessions released).

Frames stream through the chain, so memory does not grow with video length. `FrameContext` carries
the per-frame facts processors share, all in the coordinates of the frame the processor receives:
the motion, the face landmarks and box (moved by the reenactor, mapped by every stage that resizes
or places the frame), the audio window, and an explicit dirty rectangle.

The dirty rectangle: stages reuse their output buffers, so outside `dirty` a frame holds the same
pixels as the previous frame the same stage handed on; `None` before the reenactor has run, or
from a stage that returns its static base. A stage that changes pixels widens `dirty` to cover them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import onnxruntime as ort

from config.processors import ChainRule
from config.settings import LabelSettings, PostSettings, Section
from driver_synth.track import MotionFrame
from vision.errors import ModelError
from vision.models import ModelFormat, ModelRegistry
from vision.providers import ProviderChoice, open_session

Rect = tuple[int, int, int, int]  # x0, y0, x1, y1


@dataclass(frozen=True)
class AudioTrack:
    """The render's speech as mono float samples in [-1, 1] at `rate` Hz (16 kHz for Wav2Lip)."""

    samples: np.ndarray
    rate: int

    def window(self, start_s: float, end_s: float) -> AudioWindow:
        """Samples from `start_s` to `end_s`, zero outside the track (a frame at the very start or end
        sees silence there, as a model trained on padded clips expects)."""
        first, last = int(np.floor(start_s * self.rate)), int(np.ceil(end_s * self.rate))
        out = np.zeros(max(last - first, 0), np.float32)
        lo, hi = max(first, 0), min(last, len(self.samples))
        if hi > lo:
            out[lo - first : hi - first] = self.samples[lo:hi]
        return AudioWindow(out, self.rate, first)


@dataclass(frozen=True)
class AudioWindow:
    """The audio around one frame: `samples[i]` is track sample `first_sample + i` (may be negative)."""

    samples: np.ndarray
    rate: int
    first_sample: int

    def between(self, start: int, stop: int) -> np.ndarray:
        """Track samples [start, stop) (absolute indices), which must lie inside this window."""
        lo, hi = start - self.first_sample, stop - self.first_sample
        if lo < 0 or hi > len(self.samples):
            raise ValueError(f"samples {start}-{stop} are outside the frame's audio window")
        return self.samples[lo:hi]


@dataclass
class FrameContext:
    index: int
    motion: MotionFrame
    dirty: Rect | None = None  # region (in the current frame's coordinates) that differs from the last frame
    # An idle loop's base frame: the rectangle that differs from the previous base (None: unknown, all
    # of it; empty: none). Read by the reenactor, which turns it into `dirty` for the stages after it.
    base_changed: Rect | None = None
    stats: dict[str, Any] = field(default_factory=dict)
    landmarks: np.ndarray | None = None  # (468, 2) face mesh in the current frame's pixels; None: not tracked
    box: Rect | None = None  # the face's bounding box in the current frame's pixels
    audio: AudioWindow | None = None  # the speech around this frame (processors that declare `audio_span`)
    time_s: float = 0.0  # the frame's time in the whole render (a chunk starts later than 0)

    def map_geometry(self, scale: float, dx: float, dy: float) -> None:
        """The frame was resized by `scale` and placed at (dx, dy): move the face landmarks and box with it."""
        if self.landmarks is not None:
            self.landmarks = map_points(self.landmarks, scale, dx, dy)
        if self.box is not None:
            x0, y0, x1, y1 = self.box
            self.box = (
                int(np.floor(x0 * scale + dx)),
                int(np.floor(y0 * scale + dy)),
                int(np.ceil(x1 * scale + dx)),
                int(np.ceil(y1 * scale + dy)),
            )


@dataclass
class ProcessorSetup:
    """What `prepare` may use besides the base frame: the avatar (its work image and landmarks), the
    speech, and the model registry with the execution providers: `session(name)` opens a verified
    model file (sha256-pinned) on the first provider that starts and records which one that was."""

    avatar_image: np.ndarray
    avatar_landmarks: np.ndarray
    fps: int
    registry: ModelRegistry | None = None
    providers: ProviderChoice = field(default_factory=ProviderChoice)
    audio: AudioTrack | None = None
    providers_used: dict[str, str] = field(default_factory=dict)  # model name → execution provider
    base_landmarks: np.ndarray | None = None  # the avatar's landmarks in the pixels of the base being prepared
    mouth_bank: Any = None  # a personal avatar's `fusion.mouth_bank.MouthBank` (None: a photo avatar)

    def model_path(self, name: str) -> Path:
        if self.registry is None:
            raise ModelError(f"model '{name}' is needed but the engine was built without a model registry")
        return self.registry.path(name)

    def session(self, name: str) -> ort.InferenceSession:
        session, provider = open_session(self.model_path(name), self.providers)
        self.providers_used[name] = provider
        return session


class Processor(Protocol):
    """What the engine calls. Optional attributes it reads: `needs_landmarks` (fill
    `FrameContext.landmarks`/`box`), `audio_span` ((before, after) seconds of speech per frame), and
    `geometry` ((scale, dx, dy): how the stage resized or placed the frame, so the engine maps the
    landmarks into the next stage's pixels), `plan(track, first_frame)` (called once with the whole
    motion track before the frames stream: a processor that decides over the video, like the mouth
    bank's unit selection).

    The dirty-rectangle contract: outside `context.dirty` the returned array holds the pixels this
    stage returned for the previous frame. A stage never writes into an array it received unless it
    is that array's last reader (the labeler writes into the compositor's buffer, which only the
    compositor and the labeler touch)."""

    name: str

    def requirements(self) -> list[str]:
        """Model names (in the model registry) this processor needs; [] for weight-free ones."""
        ...

    def prepare(self, base: np.ndarray, setup: ProcessorSetup | None = None) -> np.ndarray:
        """Called once with the static base frame of the previous stage; returns this stage's base."""
        ...

    def process_frame(self, frame: np.ndarray, context: FrameContext) -> np.ndarray: ...

    def close(self) -> None:
        """Release what `prepare` acquired (model sessions, buffers); the engine calls it once at the end."""
        ...


@dataclass(frozen=True)
class ChainSetup:
    """What a listed processor is built from besides its own options: the output canvas, the side of
    the portrait square (what the sizing stage makes), the post and label settings, the scene (None:
    the classic layout), the avatar's work image and landmarks, and the reenactor's own inputs."""

    width: int
    height: int
    portrait: int
    post: PostSettings
    label: LabelSettings
    work_image: np.ndarray
    work_landmarks: np.ndarray
    scene: Any = None  # fusion.engine.SceneParts: layout, template, background, person mask
    reenactor: Any = None  # fusion.processors.reenactor.ReenactorOptions, as the engine resolved them
    person: np.ndarray | None = None  # the person mask (a scene's cut-out)
    backdrop: np.ndarray | None = None  # the scene's square behind the person


def _no_models(options: Any) -> Sequence[str]:
    return ()


@dataclass(frozen=True)
class ProcessorSpec:
    """One processor as the registry knows it (config/processors.py names it as `module:attribute`):
    its settings section's pydantic class (`options`, None: no section), the model formats it can
    run (`models`) and which of them a configuration runs (`requires`), where it stands in the chain
    (`rule`), and `create`, which builds the `Processor` from a `ChainSetup` and its options."""

    name: str
    create: Callable[[ChainSetup, Any], Processor]
    options: type[Section] | None = None
    models: Mapping[str, ModelFormat] = field(default_factory=dict)
    requires: Callable[[Any], Sequence[str]] = _no_models
    rule: ChainRule = field(default_factory=ChainRule)
    replaces_mouth: bool = False  # covers the mouth with recorded footage: the reenactor paints no interior
    speech_rate: int | None = None  # hears the speech, resampled to this rate (Hz)


def map_points(points: np.ndarray, scale: float, dx: float, dy: float) -> np.ndarray:
    """Pixel positions after a stage's `geometry` (scale, dx, dy): x' = x·scale + dx (pixel centres at
    integers, so a resize by s has dx = dy = (s − 1)/2, as cv2.resize samples)."""
    return np.asarray(points, np.float64) * scale + np.array([dx, dy])


def resize_geometry(scale: float) -> tuple[float, float, float]:
    """The `geometry` of a resize by `scale` (cv2.resize maps pixel centre x to (x + 0.5)·s − 0.5)."""
    return (scale, 0.5 * scale - 0.5, 0.5 * scale - 0.5)


def union_rect(*rects: Rect | None) -> Rect | None:
    """The smallest rectangle holding every given one (None entries ignored; all None: None)."""
    present = [r for r in rects if r is not None]
    if not present:
        return None
    return (
        min(r[0] for r in present),
        min(r[1] for r in present),
        max(r[2] for r in present),
        max(r[3] for r in present),
    )


def scale_rect(rect: Rect, scale: float, limit: tuple[int, int], margin: int = 0) -> Rect:
    x0, y0, x1, y1 = rect
    width, height = limit
    return (
        max(0, int(np.floor(x0 * scale)) - margin),
        max(0, int(np.floor(y0 * scale)) - margin),
        min(width, int(np.ceil(x1 * scale)) + margin),
        min(height, int(np.ceil(y1 * scale)) + margin),
    )
