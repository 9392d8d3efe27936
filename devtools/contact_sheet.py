"""Contact sheets: frames of a video at chosen times, tiled into one PNG with their time stamps.

Quality here is visual: reviewers and developers look at sheets of whole frames and of mouth crops
side by side with the photo. moviepy gives random access to a frame at any time
(`VideoFileClip.get_frame`), which is what a sheet needs; the render path does not use it (it streams
through one ffmpeg pipe, `media.video`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from config.files import atomic_path
from media.errors import MediaError

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 in the video's pixels


def evenly_spaced(duration: float, count: int) -> list[float]:
    """`count` times spread over the video, avoiding the very first and last frame."""
    if count < 1 or duration <= 0:
        return []
    return [duration * (index + 0.5) / count for index in range(count)]


def frames_at(video: Path, times: Sequence[float], crop: Box | None = None) -> list[np.ndarray]:
    """BGR frames (optionally cropped) at the given times in seconds."""
    from moviepy import VideoFileClip  # ~0.4 s to import; only sheets need it

    try:
        clip = VideoFileClip(str(video), audio=False)
    except (OSError, KeyError, IndexError) as exc:
        raise MediaError(f"{video} is not a readable video ({exc}); check the file") from exc
    try:
        last = max(clip.duration - 1.0 / max(clip.fps, 1.0), 0.0)
        frames = []
        for time in times:
            rgb = clip.get_frame(min(max(time, 0.0), last))
            if crop is not None:
                x0, y0, x1, y1 = crop
                rgb = rgb[max(y0, 0) : y1, max(x0, 0) : x1]
            frames.append(cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR))
        return frames
    finally:
        clip.close()


def tile(images: Sequence[np.ndarray], labels: Sequence[str], columns: int, tile_width: int) -> np.ndarray:
    """Images scaled to one width, tiled row by row on a dark background, each with its label."""
    if not images:
        raise MediaError("nothing to put on the contact sheet")
    scaled = [cv2.resize(im, (tile_width, max(1, round(im.shape[0] * tile_width / im.shape[1])))) for im in images]
    tile_height = max(im.shape[0] for im in scaled) + 22
    rows = (len(scaled) + columns - 1) // columns
    sheet = np.full((rows * tile_height, columns * tile_width, 3), 24, np.uint8)
    for index, (image, label) in enumerate(zip(scaled, labels, strict=True)):
        top, left = (index // columns) * tile_height, (index % columns) * tile_width
        sheet[top : top + image.shape[0], left : left + tile_width] = image
        cv2.putText(sheet, label, (left + 4, top + tile_height - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (230, 230, 230), 1)
    return sheet


def write_image(image: np.ndarray, target: Path) -> Path:
    """PNG or JPEG by the target's suffix (JPEG at quality 88: the gallery lives in git, a tenth the size)."""
    target = Path(target)
    jpeg = target.suffix.lower() in (".jpg", ".jpeg")
    ok, encoded = cv2.imencode(".jpg" if jpeg else ".png", image, [cv2.IMWRITE_JPEG_QUALITY, 88] if jpeg else [])
    if not ok:
        raise MediaError(f"could not encode the contact sheet {target}")
    with atomic_path(Path(target)) as temporary:
        temporary.write_bytes(encoded.tobytes())
    return Path(target)


def contact_sheet(
    video: Path,
    target: Path,
    times: Sequence[float],
    crop: Box | None = None,
    columns: int = 6,
    tile_width: int = 320,
    extra: Sequence[tuple[str, np.ndarray]] = (),
) -> Path:
    """A PNG of the frames at `times` (cropped to `crop` when given), after any `extra` labelled images
    (e.g. the avatar photo, to compare side by side)."""
    frames = frames_at(video, times, crop)
    images = [image for _, image in extra] + frames
    labels = [label for label, _ in extra] + [f"{time:.2f} s" for time in times]
    return write_image(tile(images, labels, columns, tile_width), target)
