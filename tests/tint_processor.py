"""A processor written as a new one is (README: Adding a processor): one module with its pydantic
`Options`, its model table, its place in the chain and `create`; registered by one line
(`"tint": "tint_processor:PROCESSOR"`), which tests/test_processors.py adds for the test's duration.

It scales the blue channel of the moved face by `gain`, a change the test measures in the finished
frames. Its model table names a model it would run, so the test sees request validation find it.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from config.processors import ChainRule
from config.settings import Section
from fusion.processors.base import ChainSetup, FrameContext, ProcessorSetup, ProcessorSpec
from vision.models import ModelFormat, TensorSpec


class TintOptions(Section):
    gain: float = Field(1.0, gt=0.0, le=4.0)  # the blue channel is multiplied by this
    model: str = "tint_lut"


class Tint:
    name = "tint"

    def __init__(self, options: TintOptions) -> None:
        self.options = options
        self.buffer: np.ndarray | None = None

    def requirements(self) -> list[str]:
        return [self.options.model]

    def _tint(self, frame: np.ndarray) -> np.ndarray:
        if self.buffer is None or self.buffer.shape != frame.shape:
            self.buffer = np.empty_like(frame)
        np.copyto(self.buffer, frame)
        blue = frame[..., 0].astype(np.float32) * self.options.gain
        self.buffer[..., 0] = np.clip(np.round(blue), 0, 255).astype(np.uint8)
        return self.buffer

    def prepare(self, base: np.ndarray, setup: ProcessorSetup | None = None) -> np.ndarray:
        return self._tint(base).copy()

    def process_frame(self, frame: np.ndarray, context: FrameContext) -> np.ndarray:
        context.dirty = (0, 0, frame.shape[1], frame.shape[0])  # every pixel recomputed
        return self._tint(frame)

    def close(self) -> None:
        self.buffer = None


def _create(setup: ChainSetup, options: TintOptions) -> Tint:
    return Tint(options)


LUT = ModelFormat(
    "tint_lut", "tint_lut.onnx", "MIT (test)", True, "https://example.invalid/tint_lut.onnx",
    (TensorSpec("input", (1, 3)),), (TensorSpec(None, (1, 3)),),
)  # fmt: skip

PROCESSOR = ProcessorSpec(
    "tint",
    create=_create,
    options=TintOptions,
    models={LUT.name: LUT},
    requires=lambda options: [options.model],
    rule=ChainRule(right_after="reenactor", why="it tints the moved face"),
)
