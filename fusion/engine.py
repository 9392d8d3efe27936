"""The fusion engine: an avatar's work image + a motion track → a stream of finished output frames.

Chain (each a `Processor`): [smoother] → reenactor → color_matcher → upscaler → compositor → labeler.
The smoother runs for recorded drivers only: a synthetic track is already smooth, and filtering it
again would blunt closure releases and peaks (the lips would lag the sound). The labeler is always
last and always present: there is no option that removes it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from config import LabelSettings, PostSettings
from driver_synth.track import MotionTrack
from fusion import topology as topo
from fusion.errors import FusionError
from fusion.processors.base import FrameContext, Processor
from fusion.processors.post import (
    ColorMatcher,
    Compositor,
    CompositorOptions,
    Labeler,
    LabelOptions,
    MotionSmoother,
    Upscaler,
    UpscalerOptions,
    Watermarker,
    find_font,
)
from fusion.processors.reenactor import Reenactor, ReenactorOptions


@dataclass(frozen=True)
class EngineOptions:
    width: int
    height: int
    fps: int
    post: PostSettings
    label: LabelSettings
    reenactor: ReenactorOptions = field(default_factory=ReenactorOptions)
    smooth_motion: bool = False  # one-euro filter on the motion (for recorded, jittery drivers)
    watermark_payload: int = 0  # 32 bits of the content id, hidden in every frame (fusion/watermark.py)
    watermark_strength: float = 2.0
    full_frame: bool = False  # every processor recomputes the whole frame (reference for the dirty-rect path)


def skin_reference_rect(landmarks: np.ndarray, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """Cheeks and nose between the eyes and the upper lip: skin that the mouth and blinks never cover."""
    x0 = landmarks[topo.RIGHT_EYE_OUTER, 0]
    x1 = landmarks[topo.LEFT_EYE_OUTER, 0]
    y0 = landmarks[list(topo.RIGHT_EYE_LOWER + topo.LEFT_EYE_LOWER), 1].max() + 2
    y1 = landmarks[list(topo.LIPS_OUTER_UPPER), 1].min() - 2
    height, width = shape[:2]
    return (int(max(x0, 0)), int(max(y0, 0)), int(min(x1, width)), int(min(max(y1, y0 + 4), height)))


class FusionEngine:
    def __init__(
        self,
        work_image: np.ndarray,
        work_landmarks: np.ndarray,
        options: EngineOptions,
        person: np.ndarray | None = None,
    ) -> None:
        font = find_font(options.label.fonts)
        if font is None:
            raise FusionError(
                f"no CJK font for the AI label (looked for {', '.join(options.label.fonts)}); "
                "run scripts/setup to install fonts-wqy-zenhei"
            )
        face_rect = skin_reference_rect(work_landmarks, work_image.shape)
        portrait = round(options.height * options.post.portrait_height_ratio)
        self.full_frame = options.full_frame
        reenactor_options = replace(options.reenactor, full_frame=options.full_frame)
        self.reenactor = Reenactor(work_landmarks, reenactor_options, person)
        smoother: list[Processor] = (
            [MotionSmoother(options.fps, options.post.smoother_min_cutoff_hz, options.post.smoother_beta)]
            if options.smooth_motion
            else []
        )
        self.chain: list[Processor] = [
            *smoother,
            self.reenactor,
            ColorMatcher(face_rect, options.post.color_match_strength),
            Upscaler(
                UpscalerOptions(size=portrait, sharpen=options.post.sharpen_amount, filter=options.post.upscale_filter)
            ),
            Compositor(
                CompositorOptions(
                    options.width, options.height, options.post.background, tuple(options.post.background_color)
                )
            ),
            Labeler(
                LabelOptions(
                    options.label.text,
                    Path(font),
                    options.label.height_ratio,
                    options.label.margin_ratio,
                    options.label.opacity,
                )
            ),
            Watermarker(options.watermark_payload, options.watermark_strength),
        ]
        base = work_image
        for processor in self.chain:
            base = processor.prepare(base)
        self.work_image = work_image
        self.still = base  # the finished frame with no motion applied (thumbnail, fallback)

    @property
    def watermark_seconds(self) -> float:
        return sum(getattr(p, "seconds", 0.0) for p in self.chain if p.name == "watermarker")

    @property
    def processor_names(self) -> list[str]:
        return [p.name for p in self.chain]

    def frames(self, track: MotionTrack, bases: Iterator[np.ndarray] | None = None) -> Iterator[np.ndarray]:
        """Yield finished frames; the yielded array is reused, so consume (write) it before the next.

        `bases` (an idle-loop avatar) gives each frame its own work-size base image, framed like the
        reference photo the engine was built on; without it every frame starts from the photo."""
        for index in range(track.frame_count):
            context = FrameContext(index=index, motion=track.frame(index))
            frame = next(bases) if bases is not None else self.work_image
            for processor in self.chain:
                frame = processor.process_frame(frame, context)
                if self.full_frame and processor is self.reenactor:
                    context.dirty = (0, 0, frame.shape[1], frame.shape[0])
            yield frame
