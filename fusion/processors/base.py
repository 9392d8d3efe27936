"""The processor contract shared by every built-in and plug-in processor.

A processor declares what it needs (`requirements()`, e.g. model names), is prepared once with typed
options and the avatar (`prepare`), then transforms one frame at a time (`process_frame`). Frames
stream through the chain, so memory does not grow with video length. `FrameContext` carries the
per-frame facts processors share: the motion for this frame and which rectangle changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from driver_synth.track import MotionFrame

Rect = tuple[int, int, int, int]  # x0, y0, x1, y1


@dataclass
class FrameContext:
    index: int
    motion: MotionFrame
    dirty: Rect | None = None  # region (in the current frame's coordinates) that differs from the base
    stats: dict[str, Any] = field(default_factory=dict)


class Processor(Protocol):
    name: str

    def requirements(self) -> list[str]:
        """Model names (from config/models.lock.yaml) this processor needs; [] for weight-free ones."""
        ...

    def prepare(self, base: np.ndarray) -> np.ndarray:
        """Called once with the static base frame of the previous stage; returns this stage's base."""
        ...

    def process_frame(self, frame: np.ndarray, context: FrameContext) -> np.ndarray: ...


def scale_rect(rect: Rect, scale: float, limit: tuple[int, int], margin: int = 0) -> Rect:
    x0, y0, x1, y1 = rect
    width, height = limit
    return (
        max(0, int(np.floor(x0 * scale)) - margin),
        max(0, int(np.floor(y0 * scale)) - margin),
        min(width, int(np.ceil(x1 * scale)) + margin),
        min(height, int(np.ceil(y1 * scale)) + margin),
    )
