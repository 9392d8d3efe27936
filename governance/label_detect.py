"""Find the visible "AI生成 / AI-generated" label in a frame (for `dhf verify`).

The label is rendered exactly as the labeler draws it, at several sizes around the expected one (a
cropped or resized copy changes its size relative to the frame), and matched by normalized
cross-correlation in the top-right area where the labeler puts it. Works on any copy of our
videos; it does not read arbitrary text.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from config import LabelSettings
from fusion.processors.post import Labeler, LabelOptions, find_font

SCALES = (0.8, 0.87, 0.94, 1.0, 1.06, 1.13, 1.2)


class LabelDetector:
    def __init__(self, label: LabelSettings, frame_height: int, frame_width: int | None = None) -> None:
        font = find_font(label.fonts)
        if font is None:
            raise FileNotFoundError(f"no CJK font for the label (looked for {', '.join(label.fonts)})")
        labeler = Labeler(LabelOptions(label.text, Path(font), label.height_ratio, label.margin_ratio, label.opacity))
        short = min(frame_height, frame_width) if frame_width is not None else frame_height  # as the labeler sizes it
        pixels, alpha = labeler.render_label(short)
        grey = cv2.cvtColor((pixels * alpha + 128.0 * (1 - alpha)).astype(np.uint8), cv2.COLOR_BGR2GRAY)
        self.templates = [cv2.resize(grey, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) for scale in SCALES]

    def score(self, frame_bgr: np.ndarray) -> float:
        """Best correlation (0..1) of the label in the top-right quarter of the frame."""
        height, width = frame_bgr.shape[:2]
        area = cv2.cvtColor(frame_bgr[: height // 4, width // 2 :], cv2.COLOR_BGR2GRAY)
        best = 0.0
        for template in self.templates:
            if template.shape[0] > area.shape[0] or template.shape[1] > area.shape[1]:
                continue
            best = max(best, float(cv2.matchTemplate(area, template, cv2.TM_CCOEFF_NORMED).max()))
        return best
