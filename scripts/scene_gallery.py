"""One frame of each bundled scene template, rendered for real, as docs/gallery/scene-<name>.jpg.

Called by scripts/gallery.py (or alone: .venv/bin/python scripts/scene_gallery.py [--out docs/gallery]).
Each frame is taken from a real render of the sample avatar (the product path: speech, motion, scene,
label, watermark), in the middle of its second caption, so the burnt-in captions show too.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2

from config import Settings, load_settings
from media.video import probe, read_frames
from pipeline.request import RenderRequest
from pipeline.run import render_video
from pipeline.stages import scene_captions

TEXT = "Hello, I am your virtual assistant. A one-year fixed deposit earns 3.5 percent per year."
LONG_SIDE = 1280  # px of the saved frame (the repository keeps small pictures)


def scene_frames(out: Path, settings: Settings) -> list[Path]:
    home = Path(tempfile.mkdtemp(prefix="dhf-scene-gallery-"))
    (home / "models").symlink_to(settings.paths.models, target_is_directory=True)
    fresh = load_settings(home=home)
    written = []
    for name in sorted(fresh.scenes):
        video = home / f"{name}.mp4"
        render_video(RenderRequest(text=TEXT, avatar_id="sample", language="en", output=video, scene=name), fresh)
        timings = next((home / "cache" / "speech").glob("*.json"))
        cues = scene_captions(fresh.for_scene(name), timings)
        at = (cues[1].start + cues[1].end) / 2 if len(cues) > 1 else 1.0
        info = probe(video)
        frames = list(read_frames(video, info.width, info.height))
        frame = frames[min(round(at * info.fps), len(frames) - 1)]
        scale = LONG_SIDE / max(frame.shape[:2])
        small = cv2.resize(frame, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        target = out / f"scene-{name}.jpg"
        cv2.imwrite(str(target), small, [cv2.IMWRITE_JPEG_QUALITY, 85])
        written.append(target)
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "docs" / "gallery")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for path in scene_frames(args.out, load_settings()):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
