"""Idle loops prepared for dirty-rectangle playback, and the colour matcher that keeps them on tone.

Measured on generated clips: a textured still backdrop with camera noise and a moving 'head'. The
preparation must keep the motion (the head's own pixels), freeze the noise (or every stage after the
reenactor redoes the whole frame), report every change in playback, and give the same frames as a
full recompute through the real engine.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from devtools.preview import preview_engine
from fusion.idle_loop import LoopPlayback, build_loop, loop_order, prepare_loop
from fusion.processors.base import FrameContext
from fusion.processors.post import ColorMatcher
from media.errors import MediaError
from media.video import EncodeOptions, VideoWriter
from tests.test_realism import equivalence_track
from vision.framing import Framing

SIZE = 160


def moving_head_frames(count: int, noise: float = 2.0, seed: int = 3) -> tuple[list[np.ndarray], list[tuple]]:
    """A textured backdrop with sensor noise and a textured disc that moves; the disc's boxes."""
    rng = np.random.default_rng(seed)
    backdrop = cv2.GaussianBlur(rng.integers(40, 215, (SIZE, SIZE, 3)).astype(np.uint8), (0, 0), 1.5)
    texture = rng.integers(0, 255, (SIZE, SIZE, 3)).astype(np.uint8)
    frames, boxes = [], []
    for index in range(count):
        centre = (70 + round(8 * np.sin(index / 3)), 80 + round(4 * np.cos(index / 4)))
        disc = np.zeros((SIZE, SIZE), np.uint8)
        cv2.circle(disc, centre, 28, 255, -1)
        frame = np.where(disc[..., None] > 0, texture, backdrop).astype(np.float32)
        frame += rng.normal(0, noise, frame.shape)
        frames.append(np.clip(frame, 0, 255).astype(np.uint8))
        boxes.append((centre[0] - 28, centre[1] - 28, centre[0] + 29, centre[1] + 29))
    return frames, boxes


def test_preparation_keeps_the_motion_and_freezes_the_noise():
    frames, boxes = moving_head_frames(24)
    loop = build_loop(frames)
    for index, (frame, box) in enumerate(zip(frames, boxes, strict=True)):
        prepared = loop.frame(index)
        x0, y0, x1, y1 = box
        head = np.abs(prepared[y0:y1, x0:x1].astype(int) - frame[y0:y1, x0:x1]).mean()
        assert head < 1.0, f"frame {index}: the moving head lost its own pixels ({head:.2f} levels)"
        rx0, ry0, rx1, ry1 = loop.rect(index)
        assert rx0 <= x0 and ry0 <= y0 and rx1 >= x1 and ry1 >= y1, (index, loop.rect(index), box)
        # The noisy backdrop is not motion: a frame's own pixels stay near the head (a 57 px disc
        # grown by its reach and feather, within the disc's travel), not all 160 x 160.
        assert (rx1 - rx0) * (ry1 - ry0) < 0.35 * SIZE * SIZE, (index, loop.rect(index))
        outside = np.ones((SIZE, SIZE), bool)
        outside[ry0:ry1, rx0:rx1] = False
        assert np.array_equal(prepared[outside], loop.still[outside])  # exactly still: nothing to redo
    # No visible boundary: the feathered edge between a frame's pixels and the still backdrop.
    worst_step = max(int(np.abs(np.diff(loop.frame(i).astype(int), axis=1)).max(initial=0)) for i in range(len(frames)))
    original_step = max(int(np.abs(np.diff(f.astype(int), axis=1)).max()) for f in frames)
    assert worst_step <= original_step


def test_playback_reports_every_changed_pixel():
    frames, _ = moving_head_frames(12)
    loop = build_loop(frames)
    order = loop_order(len(loop), 40)
    playback = LoopPlayback(loop, order)
    previous = None
    for index in order:
        shown = next(playback).copy()
        assert np.array_equal(shown, loop.frame(index))
        if previous is None:
            assert playback.changed is None  # the first frame is new everywhere
        else:
            differs = (shown != previous).any(axis=2)
            x0, y0, x1, y1 = playback.changed
            differs[y0:y1, x0:x1] = False
            assert not differs.any(), f"loop frame {index}: pixels changed outside {playback.changed}"
        previous = shown
    with pytest.raises(StopIteration):
        next(playback)


def write_clip(path, frames):
    with VideoWriter(path, SIZE, SIZE, EncodeOptions(fps=25, crf=0, preset="ultrafast")) as writer:
        for frame in frames:
            writer.write(frame)
    return path


def test_the_prepared_loop_is_cached_and_rebuilt_when_damaged(tmp_path):
    clip = write_clip(tmp_path / "idle.mp4", moving_head_frames(10)[0])
    framing, cache = Framing((0, 0, SIZE, SIZE), SIZE), tmp_path / "cache"
    first = prepare_loop(clip, framing, 25, cache)
    files = sorted((cache / "idle").iterdir())
    assert [f.name.split(".", 1)[1] for f in files] == ["index.npz", "pixels.npy"]
    stamps = [f.stat().st_mtime_ns for f in files]
    expected = [first.frame(i) for i in range(len(first))]
    again = prepare_loop(clip, framing, 25, cache)
    assert [f.stat().st_mtime_ns for f in files] == stamps  # read back, not rebuilt
    assert all(np.array_equal(frame, again.frame(i)) for i, frame in enumerate(expected))
    data = files[1]
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])  # a crash or a full disk mid-write
    rebuilt = prepare_loop(clip, framing, 25, cache)
    assert all(np.array_equal(frame, rebuilt.frame(i)) for i, frame in enumerate(expected))


def test_an_unwritable_cache_is_one_line_naming_it(tmp_path):
    clip = write_clip(tmp_path / "idle.mp4", moving_head_frames(4)[0])
    blocked = tmp_path / "cache"
    blocked.write_text("a file where the cache folder should be")
    with pytest.raises(MediaError) as refused:
        prepare_loop(clip, Framing((0, 0, SIZE, SIZE), SIZE), 25, blocked)
    message = str(refused.value)
    assert "\n" not in message and str(blocked / "idle") in message and "writable" in message


def test_colour_matcher_pulls_a_drifted_exposure_back_and_touches_nothing_else():
    rng = np.random.default_rng(5)
    base = np.clip(rng.normal((120, 140, 180), 12, (SIZE, SIZE, 3)), 0, 255).astype(np.uint8)  # skin-ish
    face = (60, 60, 100, 100)
    matcher = ColorMatcher(face)
    matcher.prepare(base)
    drifted = np.clip(base.astype(np.float32) * 1.12, 0, 255).astype(np.uint8)  # exposure up 12 %
    context = FrameContext(index=0, motion=None, dirty=(0, 0, SIZE, SIZE), stats={"moving_base": True})
    out = matcher.process_frame(drifted, context)
    x0, y0, x1, y1 = face
    before = np.abs(drifted[y0:y1, x0:x1].mean((0, 1)) - base[y0:y1, x0:x1].mean((0, 1))).max()
    after = np.abs(out[y0:y1, x0:x1].mean((0, 1)) - base[y0:y1, x0:x1].mean((0, 1))).max()
    assert before > 15 and after < 2.0, (before, after)
    mx0, my0, mx1, my1 = matcher.mask_rect
    outside = np.ones((SIZE, SIZE), bool)
    outside[my0:my1, mx0:mx1] = False
    assert np.array_equal(out[outside], drifted[outside])
    assert out is not drifted and np.array_equal(drifted, np.clip(base * 1.12, 0, 255).astype(np.uint8))
    # A small change upstream: the output equals what a fresh matcher makes of the whole frame.
    changed = drifted.copy()
    changed[70:80, 70:80] = 255 - changed[70:80, 70:80]
    context = FrameContext(index=1, motion=None, dirty=(70, 70, 80, 80), stats={"moving_base": True})
    out = matcher.process_frame(changed, context).copy()
    fresh = ColorMatcher(face)
    fresh.prepare(base)
    whole = FrameContext(index=0, motion=None, dirty=(0, 0, SIZE, SIZE), stats={"moving_base": True})
    assert np.array_equal(out, fresh.process_frame(changed, whole))
    assert context.dirty == matcher.mask_rect  # the correction's area is handed on as changed
    # Back on tone: the frame passes unchanged; the dirty rect covers the correction that went away.
    context = FrameContext(index=2, motion=None, dirty=(0, 0, SIZE, SIZE), stats={"moving_base": True})
    assert np.array_equal(matcher.process_frame(base, context), base)
    context = FrameContext(index=3, motion=None, dirty=(70, 70, 80, 80), stats={"moving_base": True})
    assert np.array_equal(matcher.process_frame(base, context), base) and context.dirty == (70, 70, 80, 80)


def test_an_idle_loop_through_the_engine_equals_a_full_recompute(settings):
    """The real engine and chain with a prepared loop's playback (dirty rectangles from `changed`)
    against the full-frame reference fed the same frames."""
    track = equivalence_track()
    fast = preview_engine("sample", settings)
    full = preview_engine("sample", settings, full_frame=True)
    base = fast.work_image
    rng = np.random.default_rng(9)
    frames = []
    for index in range(12):  # the shoulders sway a little, with camera noise everywhere
        shifted = np.roll(base, (index % 4) - 2, axis=1)
        noisy = shifted.astype(np.float32) + rng.normal(0, 1.5, base.shape)
        frames.append(np.clip(noisy, 0, 255).astype(np.uint8))
    loop = build_loop(frames)
    order = loop_order(len(loop), track.frame_count)
    references = (loop.frame(i) for i in order)
    worst, reported = 0, 0
    playback = LoopPlayback(loop, order)
    for a, b in zip(fast.frames(track, playback), full.frames(track, references), strict=True):
        worst = max(worst, int(np.abs(a.astype(np.int16) - b.astype(np.int16)).max()))
        reported += playback.changed is not None
    assert reported == track.frame_count - 1
    assert worst <= 2, f"dirty-rect frames differ from the full recompute by {worst} grey levels"
