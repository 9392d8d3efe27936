"""Idle-loop avatars: a short clip of the person sitting still is the base instead of one photo.

The clip is decoded once per avatar version at the output frame rate, framed exactly like its
reference frame (the frame the face analysis and the reenactor's fields were built on), and
prepared for cheap playback:

- the backdrop is made exactly still: every frame keeps its own pixels only where it differs from
  the loop's median frame by more than sensor noise (grown and feathered, so no edge can show),
  and shows the median elsewhere. A real camera's noise and compression flicker would otherwise
  make every pixel of every frame "changed", and every stage after the reenactor would redo the
  whole frame (issue 19: an idle-loop render cost 1.4× a photo render for that reason alone);
- each frame is stored as the rectangle that holds its own pixels, raw, in one memory-mapped file
  under the cache (loading the loop reads nothing up front; a frame costs one copy of a crop);
- playback tells the engine which rectangle changed since the previous frame (`LoopPlayback.changed`),
  so the reenactor and every later stage work on dirty rectangles, as for a photo.

Frames are played forward then backward (ping-pong), so the loop never jumps, however long the video.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from config.files import atomic_path, content_hash, file_sha256
from fusion.processors.base import Rect, union_rect
from media.errors import MediaError
from media.video import read_frames
from vision.framing import Framing, apply_framing

LOOP_FORMAT = 1  # bump when the preparation below changes: cached loops are then rebuilt
STILL_LEVELS = 6.0  # grey levels (7 px box average) under which a pixel is backdrop, not motion
REACH_PX = 8  # moving areas grow by this before the feather (motion blur, the hair's fringe)
FEATHER_SIGMA = 3.0  # px: the blend from a frame's own pixels to the still backdrop
MEDIAN_FRAMES = 31  # frames the still backdrop is the median of (evenly spaced over the clip)
EMPTY: Rect = (0, 0, 0, 0)  # stored for a frame with no pixels of its own; `changed` when nothing did


def _bounding_rect(mask: np.ndarray) -> Rect:
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return EMPTY
    return (int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)


def stabilise(frame: np.ndarray, still: np.ndarray) -> np.ndarray:
    """`frame` where it moves, `still` (exactly) where it only differs by noise."""
    difference = cv2.absdiff(frame, still).max(axis=2).astype(np.float32)
    moving = (cv2.blur(difference, (7, 7)) > STILL_LEVELS).astype(np.uint8)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * REACH_PX + 1, 2 * REACH_PX + 1))
    moving = cv2.dilate(moving, kernel).astype(np.float32)
    alpha = cv2.GaussianBlur(moving, (0, 0), FEATHER_SIGMA)[..., None]
    blended = still.astype(np.float32) + alpha * (frame.astype(np.float32) - still)
    return np.where(alpha > 1e-3, np.clip(blended + 0.5, 0, 255), still).astype(np.uint8)


@dataclass(frozen=True)
class PreparedLoop:
    """The still backdrop, and each frame's own pixels as a rectangle of a flat byte array."""

    still: np.ndarray  # (H, W, 3) uint8
    rects: np.ndarray  # (n, 4) int: x0, y0, x1, y1 of each frame's own pixels (empty: all still)
    offsets: np.ndarray  # (n + 1,) int64: frame k's bytes are pixels[offsets[k]:offsets[k + 1]]
    pixels: np.ndarray  # 1-D uint8, memory-mapped from the cache

    def __len__(self) -> int:
        return len(self.rects)

    def rect(self, index: int) -> Rect | None:
        """Where frame `index` has pixels of its own (None: it is the still backdrop)."""
        x0, y0, x1, y1 = (int(v) for v in self.rects[index])
        return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None

    def paste(self, index: int, image: np.ndarray) -> Rect | None:
        """Write frame `index`'s own pixels into `image` (holding the still backdrop there); their rect."""
        rect = self.rect(index)
        if rect is not None:
            x0, y0, x1, y1 = rect
            flat = self.pixels[self.offsets[index] : self.offsets[index + 1]]
            image[y0:y1, x0:x1] = np.asarray(flat).reshape(y1 - y0, x1 - x0, 3)
        return rect

    def frame(self, index: int) -> np.ndarray:
        """Frame `index` in full (tests, the reference path)."""
        image = self.still.copy()
        self.paste(index, image)
        return image


def _framed_frames(video: Path, framing: Framing, fps: int) -> list[np.ndarray]:
    no_landmarks = np.zeros((1, 3), np.float32)
    frames = [apply_framing(frame, no_landmarks, framing)[0] for frame in read_frames(video, fps=fps)]
    if not frames:
        raise MediaError(f"idle-loop video {video} has no readable frames; re-enroll the avatar")
    return frames


def build_loop(frames: list[np.ndarray]) -> PreparedLoop:
    """The prepared loop of framed `frames`, in memory: still backdrop, rectangles, crops."""
    picks = np.linspace(0, len(frames) - 1, min(MEDIAN_FRAMES, len(frames))).round().astype(int)
    still = np.median(np.stack([frames[i] for i in picks]), axis=0).round().astype(np.uint8)
    rects, parts, offsets = [], [], [0]
    for frame in frames:
        stable = stabilise(frame, still)
        rect = _bounding_rect((stable != still).any(axis=2))
        x0, y0, x1, y1 = rect
        part = stable[y0:y1, x0:x1].reshape(-1)
        rects.append(rect)
        parts.append(part)
        offsets.append(offsets[-1] + part.size)
    pixels = np.concatenate(parts) if offsets[-1] else np.zeros(1, np.uint8)
    return PreparedLoop(still, np.asarray(rects, np.int32), np.asarray(offsets, np.int64), pixels)


def _save(loop: PreparedLoop, data_path: Path, index_path: Path) -> None:
    """Data first, index last, each renamed into place: an index means its data is whole."""
    with atomic_path(data_path) as temporary:
        np.save(temporary, loop.pixels, allow_pickle=False)
    with atomic_path(index_path) as temporary, open(temporary, "wb") as handle:
        np.savez(handle, still=loop.still, rects=loop.rects, offsets=loop.offsets)


def prepare_loop(video: Path, framing: Framing, fps: int, cache: Path) -> PreparedLoop:
    """The prepared loop of `video`, built on first use and cached under `cache/idle` by the clip's
    content, the framing and the frame rate (an avatar version's clip never changes)."""
    key = content_hash(
        {"video": file_sha256(video), "crop": framing.crop, "work": framing.work_size, "fps": fps, "v": LOOP_FORMAT}
    )
    folder = Path(cache) / "idle"
    data_path, index_path = folder / f"{key}.pixels.npy", folder / f"{key}.index.npz"
    if not (index_path.is_file() and data_path.is_file()):
        _build(video, framing, fps, data_path, index_path)
    loaded = _load(data_path, index_path)
    if loaded is None:  # truncated or damaged (a full disk, a crash, a hand edit): rebuilt once
        _build(video, framing, fps, data_path, index_path)
        loaded = _load(data_path, index_path)
    if loaded is None:
        raise MediaError(f"could not cache the idle loop under {folder}; check free space and permissions")
    return loaded


def _build(video: Path, framing: Framing, fps: int, data_path: Path, index_path: Path) -> None:
    try:
        _save(build_loop(_framed_frames(video, framing, fps)), data_path, index_path)
    except OSError as exc:  # the cache is not writable (full disk, a file in the way, permissions)
        raise MediaError(
            f"could not cache the idle loop under {data_path.parent} ({exc.strerror or exc}); "
            "check free space and permissions, or set paths.home to a writable folder"
        ) from exc


def _load(data_path: Path, index_path: Path) -> PreparedLoop | None:
    try:
        with np.load(index_path) as index:
            still, rects, offsets = index["still"], index["rects"], index["offsets"]
        pixels = np.load(data_path, mmap_mode="r")
    except (OSError, ValueError, KeyError):
        return None
    if pixels.ndim != 1 or pixels.size < offsets[-1] or len(offsets) != len(rects) + 1:
        return None
    return PreparedLoop(still, rects, offsets, pixels)


def loop_order(length: int, count: int) -> list[int]:
    """Frame indices for `count` output frames: 0, 1, …, n-1, n-2, …, 1, 0, 1, …"""
    if length == 1:
        return [0] * count
    period = 2 * length - 2
    return [i if i < length else period - i for i in (k % period for k in range(count))]


class LoopPlayback:
    """Iterator over base frames in a given order. Yields one reused buffer; after each `next`,
    `changed` is the rectangle that differs from the previously yielded frame (None for the first
    frame: everything is new to the consumer; an empty rectangle when nothing changed)."""

    def __init__(self, loop: PreparedLoop, order: list[int]) -> None:
        self.loop = loop
        self._order = iter(order)
        self.buffer = loop.still.copy()
        self._shown: Rect | None = None  # the rectangle of the buffer holding a frame's own pixels
        self._started = False
        self.changed: Rect | None = None

    def __iter__(self) -> LoopPlayback:
        return self

    def __next__(self) -> np.ndarray:
        index = next(self._order)
        if self._shown is not None:
            x0, y0, x1, y1 = self._shown
            self.buffer[y0:y1, x0:x1] = self.loop.still[y0:y1, x0:x1]
        rect = self.loop.paste(index, self.buffer)
        self.changed = (union_rect(self._shown, rect) or EMPTY) if self._started else None
        self._shown, self._started = rect, True
        return self.buffer


class IdleLoop:
    """An avatar's idle clip, prepared (cached) and ready to play from any output frame."""

    def __init__(self, video: Path, framing: Framing, fps: int, cache: Path) -> None:
        self.prepared = prepare_loop(video, framing, fps, cache)

    def __len__(self) -> int:
        return len(self.prepared)

    def order(self, count: int) -> list[int]:
        return loop_order(len(self.prepared), count)

    def bases(self, count: int, start: int = 0) -> LoopPlayback:
        """Base frames for output frames [start, count): a chunk continues where the previous one
        left the loop (the same ping-pong position as a single pass)."""
        return LoopPlayback(self.prepared, self.order(count)[start:])
