"""Regenerate the bundled scene images in config/scenes/ (example brand: a logo and a web backdrop).

Drawn here rather than downloaded: the factory ships nothing it cannot reproduce offline, and the
example brand ("Demo Bank") belongs to nobody.
    .venv/bin/python scripts/make_scene_assets.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from config import load_settings  # noqa: E402
from fusion.processors.post import find_font  # noqa: E402

OUT = ROOT / "config" / "scenes"


def logo(font: Path) -> Image.Image:
    """A round mark and the name, white on transparent (readable on the dark example backgrounds)."""
    height = 160
    name = ImageFont.truetype(str(font), 92)
    width = height + 24 + round(name.getlength("Demo Bank")) + 8
    image = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.ellipse((4, 4, height - 4, height - 4), fill=(242, 169, 0, 255))
    draw.ellipse((38, 38, height - 38, height - 38), fill=(0, 0, 0, 0))
    draw.rectangle((height // 2 - 10, 20, height // 2 + 10, height - 20), fill=(242, 169, 0, 255))
    top = name.getbbox("Demo Bank")[1]
    draw.text((height + 24, (height - 92) // 2 - top + 6), "Demo Bank", font=name, fill=(255, 255, 255, 255))
    return image


def web_background(width: int = 1920, height: int = 1080) -> np.ndarray:
    """A deep blue gradient with soft light shapes: calm behind a person, dark under the AI label."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    t = (xs / width * 0.6 + ys / height * 0.4)[..., None]
    left, right = np.array([92, 52, 22], np.float32), np.array([140, 86, 34], np.float32)  # BGR
    image = left * (1 - t) + right * t
    for cx, cy, r, gain in ((0.25, 0.75, 0.35, 28), (0.55, 0.2, 0.25, 18), (0.1, 0.15, 0.2, 14)):
        d = np.sqrt((xs / width - cx) ** 2 + ((ys / height - cy) * height / width) ** 2) / r
        image += gain * np.clip(1 - d, 0, 1)[..., None] ** 2
    lines = np.zeros((height, width), np.float32)
    for k in range(7):
        y = int(height * (0.55 + 0.06 * k))
        cv2.line(lines, (0, y + int(0.12 * height)), (width, y - int(0.18 * height)), 1.0, 2, cv2.LINE_AA)
    image += 10 * cv2.GaussianBlur(lines, (0, 0), 3)[..., None]
    return np.clip(image, 0, 255).astype(np.uint8)


def main() -> None:
    font = find_font(load_settings().label.fonts)
    if font is None:
        raise SystemExit("no CJK font; run scripts/setup")
    OUT.mkdir(parents=True, exist_ok=True)
    logo(font).save(OUT / "demo-bank-logo.png", optimize=True)
    cv2.imwrite(str(OUT / "web-background.jpg"), web_background(), [cv2.IMWRITE_JPEG_QUALITY, 88])
    print(f"wrote {OUT}/demo-bank-logo.png and web-background.jpg")


if __name__ == "__main__":
    main()
