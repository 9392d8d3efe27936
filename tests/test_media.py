"""The media layer on real ffmpeg: contact sheets show the frames at the requested times."""

from __future__ import annotations

import os

import cv2
import numpy as np
import pytest

from devtools.contact_sheet import contact_sheet, evenly_spaced, frames_at
from media.errors import MediaError
from media.video import EncodeOptions, VideoWriter


@pytest.fixture(scope="module")
def ramp(tmp_path_factory):
    """2 s at 25 fps; frame i is a flat grey of level 10 * (i // 5) (so each level lasts 0.2 s)."""
    path = tmp_path_factory.mktemp("media") / "ramp.mp4"
    with VideoWriter(path, 320, 240, EncodeOptions(fps=25, crf=0, preset="ultrafast")) as writer:
        for index in range(50):
            writer.write(np.full((240, 320, 3), 10 * (index // 5) + 20, np.uint8))
    return path


def test_frames_at_returns_the_frame_shown_at_each_time(ramp):
    times = [0.1, 0.5, 1.05, 1.9]
    frames = frames_at(ramp, times)
    levels = [float(frame.mean()) for frame in frames]
    expected = [20 + 10 * int(t // 0.2) for t in times]
    assert all(abs(got - want) <= 2 for got, want in zip(levels, expected, strict=True)), levels  # YUV rounding
    cropped = frames_at(ramp, [0.1], crop=(10, 20, 110, 70))[0]
    assert cropped.shape == (50, 100, 3)


def test_contact_sheet_tiles_the_frames_with_extra_images_first(ramp, tmp_path):
    times = evenly_spaced(2.0, 8)
    assert times[0] == pytest.approx(0.125) and times[-1] == pytest.approx(1.875)
    photo = np.full((75, 100, 3), 250, np.uint8)  # 4:3 like the video, so all tiles are 120 px tall
    sheet_path = contact_sheet(ramp, tmp_path / "sheet.png", times, columns=3, tile_width=160, extra=[("photo", photo)])
    sheet = cv2.imread(str(sheet_path))
    tile_height = 120 + 22  # 320x240 scaled to 160 wide, plus the label strip
    assert sheet.shape == (3 * tile_height, 3 * 160, 3)  # 9 tiles in 3 columns
    assert sheet[40, 80].mean() > 240  # the photo comes first
    second = sheet[40, 160 + 80].mean()
    assert abs(second - (20 + 10 * int(times[0] // 0.2))) <= 2


def test_an_unreadable_video_is_a_media_error(tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    with pytest.raises(MediaError, match="not a readable video"):
        frames_at(broken, [0.0])


def test_every_frame_written_is_the_frame_encoded_even_when_the_encoder_lags(tmp_path):
    """The writer converts into a ring of reused buffers: a producer far faster than ffmpeg (tiny
    queue, frames made in microseconds) must still get each frame encoded as it was, in order."""
    from media.video import read_frames

    path = tmp_path / "order.mp4"
    with VideoWriter(path, 160, 96, EncodeOptions(fps=25, crf=0, preset="medium"), queue_frames=1) as writer:
        for index in range(60):
            frame = np.full((96, 160, 3), 30 + 2 * index, np.uint8)
            frame[40:56, 2 * index : 2 * index + 16] = 255  # a white square walking right
            writer.write(frame)
            frame[:] = 0  # the caller reuses its buffer at once
    decoded = [frame.copy() for frame in read_frames(path)]
    assert len(decoded) == 60
    for index, frame in enumerate(decoded):
        assert abs(float(np.median(frame[:30])) - (30 + 2 * index)) <= 2, index
        columns = np.flatnonzero(frame[48].max(axis=1) > 230)
        assert columns.size and abs(int(columns[0]) - 2 * index) <= 1, (index, columns[:3])


def test_the_encoder_leaves_a_core_to_the_engine():
    from config.settings import VideoSettings

    assert VideoSettings(encoder_threads=3).encoder_thread_count() == 3
    cores = len(os.sched_getaffinity(0))
    assert VideoSettings().encoder_thread_count() == max(1, cores - 1)
