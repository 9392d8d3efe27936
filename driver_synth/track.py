"""The motion track: the typed artifact the fusion engine reads (NPZ on disk).

Mouth channels are normalized (see config/visemes.yaml); tongue is 0 (resting low) … 1 (tip raised
to the upper teeth); blink is 0 (open) … 1 (closed); eye_wide and brow are 0 (neutral) … 1 (wide open,
raised); head pose is in degrees, head translation in interocular distances, head_scale a relative
size change (0.05 = 5 % nearer). The track says nothing about any particular face, so one track
drives every avatar. Tracks written before a channel existed load with that channel at 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

# How far the width channels move the lips at value 1, as fractions of the mouth width: the track's
# scale, shared by the engine that renders it (fusion.motion_basis) and the reader that measures a
# recorded face into it (driver_synth.driver_video).
WIDTH_TRAVEL = 0.3  # total width change at lip_width = 1 (each corner moves half of it)
ROUND_NARROW = 0.4  # total width change at lip_round = 1

CHANNELS = (
    "jaw_open",
    "lip_width",
    "lip_round",
    "lip_closure",
    "teeth",
    "tongue",
    "blink",
    "eye_wide",
    "brow",
    "head_yaw",
    "head_pitch",
    "head_roll",
    "head_x",
    "head_y",
    "head_scale",
)
OPTIONAL_CHANNELS = ("tongue", "eye_wide", "brow", "head_x", "head_y", "head_scale")  # added later: default 0


@dataclass(frozen=True)
class MotionFrame:
    """One frame of motion; a view into the track."""

    jaw_open: float = 0.0
    lip_width: float = 0.0
    lip_round: float = 0.0
    lip_closure: float = 0.0
    teeth: float = 0.0
    tongue: float = 0.0
    blink: float = 0.0
    eye_wide: float = 0.0
    brow: float = 0.0
    head_yaw: float = 0.0
    head_pitch: float = 0.0
    head_roll: float = 0.0
    head_x: float = 0.0
    head_y: float = 0.0
    head_scale: float = 0.0

    @property
    def mouth_gap(self) -> float:
        """Visible lip opening: jaw travel that the lips do not hide."""
        return self.jaw_open * (1.0 - self.lip_closure)


SOURCES = ("synthetic", "recorded")


@dataclass(frozen=True)
class MotionTrack:
    """Per-frame motion. `source` says where it came from: a synthetic track is smooth by
    construction; one read from a recorded face carries landmark jitter and gets filtered."""

    fps: int
    channels: dict[str, np.ndarray]
    source: str = "synthetic"

    def __post_init__(self) -> None:
        lengths = {len(v) for v in self.channels.values()}
        missing = set(CHANNELS) - set(self.channels)
        if missing or len(lengths) != 1:
            raise ValueError(f"motion track needs channels {CHANNELS} of equal length (missing {sorted(missing)})")
        if self.source not in SOURCES:
            raise ValueError(f"motion track source must be one of {SOURCES}, not {self.source!r}")

    @property
    def frame_count(self) -> int:
        return len(self.channels["jaw_open"])

    @property
    def duration(self) -> float:
        return self.frame_count / self.fps

    def frame(self, index: int) -> MotionFrame:
        return MotionFrame(**{name: float(self.channels[name][index]) for name in CHANNELS})

    def mouth_gap(self) -> np.ndarray:
        return self.channels["jaw_open"] * (1.0 - self.channels["lip_closure"])

    def save(self, path: Path) -> None:
        with open(path, "wb") as handle:
            np.savez_compressed(
                handle,
                fps=np.int32(self.fps),
                source=np.array(self.source),
                **{k: v.astype(np.float32) for k, v in self.channels.items()},
            )

    @classmethod
    def load(cls, path: Path) -> MotionTrack:
        with np.load(path) as data:
            source = str(data["source"]) if "source" in data.files else "synthetic"
            count = len(data["jaw_open"])
            channels = {
                name: data[name].astype(np.float32) if name in data.files else np.zeros(count, np.float32)
                for name in CHANNELS
                if name in data.files or name in OPTIONAL_CHANNELS
            }
            return cls(fps=int(data["fps"]), channels=channels, source=source)

    @classmethod
    def from_channels(cls, fps: int, channels: dict[str, np.ndarray], source: str = "synthetic") -> MotionTrack:
        """A track from the given channels; every channel not given is 0 throughout."""
        count = len(next(iter(channels.values())))
        full = {name: np.asarray(channels.get(name, np.zeros(count)), np.float32) for name in CHANNELS}
        return cls(fps=fps, channels=full, source=source)
