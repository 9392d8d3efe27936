"""The motion track: the typed artifact the fusion engine reads (NPZ on disk).

Mouth channels are normalized (see config/visemes.yaml); blink is 0 (open) … 1 (closed); head pose
is in degrees. The track says nothing about any particular face, so one track drives every avatar.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

CHANNELS = (
    "jaw_open",
    "lip_width",
    "lip_round",
    "lip_closure",
    "teeth",
    "blink",
    "head_yaw",
    "head_pitch",
    "head_roll",
)


@dataclass(frozen=True)
class MotionFrame:
    """One frame of motion; a view into the track."""

    jaw_open: float
    lip_width: float
    lip_round: float
    lip_closure: float
    teeth: float
    blink: float
    head_yaw: float
    head_pitch: float
    head_roll: float

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
            return cls(
                fps=int(data["fps"]),
                channels={name: data[name].astype(np.float32) for name in CHANNELS},
                source=source,
            )
