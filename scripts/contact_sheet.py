"""Look at a render: a PNG contact sheet of whole frames or mouth crops, next to the avatar's photo.

    .venv/bin/python scripts/contact_sheet.py answer.mp4 -o sheet.png [--mouth] [--count 24] [--avatar sample]

`--mouth` crops every frame around the lips (found on that frame, so head motion is followed) at
one size, so openings can be compared; `--avatar` puts the photo (or its mouth) first.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # devtools/ is not installed

import numpy as np

from avatars.library import AvatarLibrary
from config import load_settings
from devtools.contact_sheet import evenly_spaced, frames_at, tile, write_image
from media.video import probe
from vision import topology as topo
from vision.analysis import FaceAnalyser, read_image
from vision.models import ModelRegistry

LIPS = list(topo.LIPS_OUTER_UPPER + topo.LIPS_OUTER_LOWER)


def mouth_crop(image: np.ndarray, analyser: FaceAnalyser, half_width: float | None = None) -> tuple[np.ndarray, float]:
    """The region around the lips (1.6 mouth widths wide, 4:3), and the half width used."""
    face = analyser.largest_face(image)
    if face is None:
        return image, half_width or 0.0
    lips = face.landmarks[LIPS, :2]
    centre = lips.mean(axis=0)
    half = half_width or 0.8 * float(np.ptp(lips[:, 0]))
    x0, x1 = int(centre[0] - half), int(centre[0] + half)
    y0, y1 = int(centre[1] - 0.75 * half), int(centre[1] + 0.75 * half)
    height, width = image.shape[:2]
    return image[max(y0, 0) : min(y1, height), max(x0, 0) : min(x1, width)], half


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("video", type=Path)
    parser.add_argument("-o", "--output", type=Path, required=True)
    parser.add_argument("--count", type=int, default=24, help="frames on the sheet (default 24)")
    parser.add_argument("--columns", type=int, default=6)
    parser.add_argument("--mouth", action="store_true", help="crop every frame around the lips")
    parser.add_argument("--avatar", help="put this avatar's photo first")
    parser.add_argument("--times", help="comma-separated seconds instead of evenly spaced frames")
    args = parser.parse_args()
    settings = load_settings()
    duration = probe(args.video).duration
    times = [float(t) for t in args.times.split(",")] if args.times else evenly_spaced(duration, args.count)
    frames = frames_at(args.video, times)
    images, labels = [], [f"{t:.2f} s" for t in times]
    analyser = FaceAnalyser(ModelRegistry(settings.paths.models)) if args.mouth else None
    if args.avatar:
        photo = read_image(
            AvatarLibrary.from_settings(settings.paths).get(args.avatar).photo, settings.images.max_pixels
        )
        images.append(mouth_crop(photo, analyser)[0] if analyser else photo)
        labels.insert(0, f"photo {args.avatar}")
    half = None
    for frame in frames:
        if analyser is None:
            images.append(frame)
            continue
        crop, half = mouth_crop(frame, analyser, half)
        images.append(crop)
    write_image(tile(images, labels, args.columns, 320 if args.mouth else 480), args.output)
    print(args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
