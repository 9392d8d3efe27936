"""Idle-loop avatars: a short clip of the person sitting still is the base instead of one photo.

The clip is decoded once at the output frame rate, framed exactly like its reference frame (the
frame the face analysis and the reenactor's fields were built on) and kept as JPEG bytes (~60 kB
a frame at 640 px, so a 10 s loop costs ~15 MB, not 300 MB of raw frames). Frames are played
forward then backward (ping-pong), so the loop never jumps, however long the video.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from fusion.framing import Framing, apply_framing
from media.errors import MediaError
from media.video import read_frames

JPEG_QUALITY = 95


class IdleLoop:
    def __init__(self, video: Path, framing: Framing, fps: int) -> None:
        self.frames: list[bytes] = []
        no_landmarks = np.zeros((1, 3), np.float32)
        for frame in read_frames(video, fps=fps):
            work, _ = apply_framing(frame, no_landmarks, framing)
            ok, encoded = cv2.imencode(".jpg", work, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
            if ok:
                self.frames.append(encoded.tobytes())
        if not self.frames:
            raise MediaError(f"idle-loop video {video} has no readable frames; re-enroll the avatar")

    def order(self, count: int) -> list[int]:
        """Frame indices for `count` output frames: 0, 1, …, n-1, n-2, …, 1, 0, 1, …"""
        n = len(self.frames)
        if n == 1:
            return [0] * count
        period = 2 * n - 2
        return [i if i < n else period - i for i in (k % period for k in range(count))]

    def bases(self, count: int) -> Iterator[np.ndarray]:
        for index in self.order(count):
            yield cv2.imdecode(np.frombuffer(self.frames[index], np.uint8), cv2.IMREAD_COLOR)
