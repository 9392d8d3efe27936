"""The gallery: what the engine makes of each bundled avatar, as JPEGs under docs/gallery/.

For the sample (teeth showing) and the closed-lips sample: mouth crops at every viseme next to the
photo's own mouth; a strip of 2 s of motion (the head rolling ±15° while talking, a blink); and the
photo side by side with a few whole portraits. Regenerate whenever the engine changes:
    scripts/gallery        (or .venv/bin/python scripts/gallery.py [--out docs/gallery])
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # devtools/ is not installed

import numpy as np

from avatars.library import AvatarLibrary
from config import load_settings, load_visemes_table
from devtools.contact_sheet import tile, write_image
from devtools.preview import output_box, preview_engine, preview_frames
from driver_synth.track import MotionTrack
from phoneme.visemes import PARAMETERS, VisemeTable
from vision import topology as topo
from vision.analysis import read_image

AVATARS = ("sample", "sample-closed")
LIPS = topo.LIPS_OUTER_UPPER + topo.LIPS_OUTER_LOWER


def viseme_track(fps: int) -> tuple[MotionTrack, list[str]]:
    """One frame per viseme, each held as the visemes table defines it."""
    table = VisemeTable(load_visemes_table())
    labels = [f"{key} {shape.name}" for key, shape in table.shapes.items()]
    channels = {p: np.array([getattr(shape, p) for shape in table.shapes.values()]) for p in PARAMETERS}
    return MotionTrack.from_channels(fps, channels), labels


def motion_track(fps: int, seconds: float = 2.0) -> MotionTrack:
    """The head rolling ±15° (and turning a little) while the mouth talks; one blink."""
    t = np.arange(round(fps * seconds)) / fps
    return MotionTrack.from_channels(
        fps,
        {
            "head_roll": 15 * np.sin(2 * np.pi * t / seconds),
            "head_yaw": 6 * np.sin(2 * np.pi * t / seconds + 1.2),
            "head_pitch": 4 * np.sin(4 * np.pi * t / seconds),
            "jaw_open": 0.55 * (1 + np.sin(2 * np.pi * 2.6 * t)) / 2,
            "lip_round": 0.6 * np.clip(np.sin(2 * np.pi * 0.7 * t), 0, 1),
            "blink": np.clip(1 - np.abs(t - 1.3) / 0.1, 0, 1),
            "brow": 0.6 * np.clip(1 - np.abs(t - 0.6) / 0.3, 0, 1),
        },
    )


def crop(image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    x0, y0, x1, y1 = box
    return image[max(y0, 0) : y1, max(x0, 0) : x1]


def gallery(avatar_id: str, out: Path, settings) -> list[Path]:
    fps = settings.video.fps
    engine = preview_engine(avatar_id, settings)
    x0, y0, x1, y1 = output_box(engine, LIPS, 0.9)
    centre_y, half_height = (y0 + y1) // 2, round(0.4 * (x1 - x0))
    mouth = (x0, centre_y - half_height, x1, centre_y + half_height)
    face = output_box(engine, topo.FACE_OVAL, 1.4)
    still = engine.still
    track, labels = viseme_track(fps)
    frames = preview_frames(avatar_id, track, settings)
    written = [
        write_image(
            tile([crop(still, mouth)] + [crop(f, mouth) for f in frames], ["photo (rest)", *labels], 5, 300),
            out / f"{avatar_id}-visemes.jpg",
        )
    ]
    moving = preview_frames(avatar_id, motion_track(fps), settings)
    picks = np.linspace(0, len(moving) - 1, 10).round().astype(int)
    strip = tile([crop(moving[i], face) for i in picks], [f"{i / fps:.2f} s" for i in picks], 10, 220)
    written.append(write_image(strip, out / f"{avatar_id}-motion.jpg"))
    photo = read_image(AvatarLibrary.from_settings(settings.paths).get(avatar_id).photo, settings.images.max_pixels)
    keys = [label.split()[0] for label in labels]
    rest, portrait, rounded = (frames[keys.index(key)] for key in ("X", "D", "F"))
    side = tile([photo, crop(rest, face), crop(portrait, face), crop(rounded, face)],
                ["photo", "rendered, at rest (X)", "wide open (D)", "rounded (F)"], 4, 360)  # fmt: skip
    written.append(write_image(side, out / f"{avatar_id}-side-by-side.jpg"))
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "docs" / "gallery")
    args = parser.parse_args()
    settings = load_settings()
    args.out.mkdir(parents=True, exist_ok=True)
    for avatar_id in AVATARS:
        for path in gallery(avatar_id, args.out, settings):
            print(path)
    from scene_gallery import scene_frames  # one frame of each scene template (scripts/scene_gallery.py)

    for path in scene_frames(args.out, settings):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
