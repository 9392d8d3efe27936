"""Hair at the frame's edge (issue 26): where the head shrinks or moves down, the strip it uncovers
at the top of the photo shows the backdrop, not a mirrored copy of the hair."""

from __future__ import annotations

import numpy as np

from driver_synth.track import MotionTrack
from fusion import topology as topo
from pipeline.preview import preview_engine

TOP_ROWS = 12  # work pixels: the sample photo's backdrop above the hair (the hair starts ~15 rows down)
HAIR_STEP = 40  # grey levels: a backdrop pixel turned into hair (light grey backdrop vs brown hair)


def _top_band(engine, frame: np.ndarray) -> np.ndarray:
    """The output pixels of the photo's top TOP_ROWS rows over the head's width."""
    names = [processor.name for processor in engine.chain]
    upscaler, compositor = engine.chain[names.index("upscaler")], engine.chain[names.index("compositor")]
    oval = engine.reenactor.landmarks[list(topo.FACE_OVAL), :2]
    centre, half = oval.mean(0)[0], (oval[:, 0].max() - oval[:, 0].min()) / 2
    x0 = round((centre - 1.6 * half) * upscaler.scale) + compositor.left
    x1 = round((centre + 1.6 * half) * upscaler.scale) + compositor.left
    y0, y1 = compositor.top, compositor.top + round(TOP_ROWS * upscaler.scale)
    return frame[y0:y1, x0:x1].astype(np.int16)


def test_a_shrinking_or_lowered_head_leaves_backdrop_not_hair_at_the_top_edge(settings):
    engine = preview_engine("sample", settings)
    # Rest, then the head shrinking (leaning back) and moving down: both pull the hair off the top edge.
    ramp = np.linspace(0.0, 1.0, 5)
    track = MotionTrack.from_channels(
        25,
        {
            "head_scale": np.concatenate([[0.0], -0.3 * ramp, np.zeros(5)]),
            "head_y": np.concatenate([[0.0], np.zeros(5), 0.4 * ramp]),
        },
    )
    frames = [frame.copy() for frame in engine.frames(track)]
    rest = _top_band(engine, frames[0])
    assert rest.mean() > 150, "the sample photo's top rows are its light backdrop"
    shares = []
    for frame in frames[1:]:
        band = _top_band(engine, frame)
        shares.append(float((np.abs(band - rest).max(axis=2) > HAIR_STEP).mean()))
    # The head really moved away from the edge (the hair's top is further down than at rest).
    assert np.abs(frames[5].astype(np.int16) - frames[0]).max() > 100
    worst = int(np.argmax(shares)) + 1
    assert max(shares) < 0.01, f"hair at the top edge in frame {worst}: {max(shares):.1%} of the band ({shares})"
