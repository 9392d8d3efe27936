#!/usr/bin/env python3
"""A timed walkthrough of the studio, as a new editor and a reviewer use it, in headless Chromium on a real
`dhf api` with a fresh home: sign in, write a video, follow its render, a reviewer approves it, the editor
plays it and downloads the MP4. Prints each step's seconds (and JSON with --json) and writes a screenshot
of every page to docs/gallery/studio-*.png (the README's Studio section shows them).

Why the steps come from tests/reliability/studio_flow.py: they are the clicks the browser test proves work,
so the README's timings and pictures cannot drift from the tested pages.

Usage: scripts/studio_walkthrough.py [--text "..."] [--small] [--gallery docs/gallery] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests" / "reliability"), str(REPO / "tests"), str(REPO)]

from chromium import Chromium  # noqa: E402
from conftest import ApiServer, own_home  # noqa: E402
from studio_flow import REVIEWED_AVATAR, Studio, enroll_reviewed_avatar, make_keys  # noqa: E402

TEXT = "Our one year deposit now pays three point five percent."


def walk(text: str, small: bool, gallery: Path | None) -> dict[str, float]:
    """Run the walkthrough; the seconds of each step (wall clock, as the editor waits)."""
    with tempfile.TemporaryDirectory(prefix="dhf-walkthrough-") as scratch:
        folder = Path(scratch)
        home = own_home(folder / "home")
        enroll_reviewed_avatar(home, folder / "reviewed")
        keys = make_keys(home)
        config = "video: {width: 640, height: 360}\n" if small else ""
        server = ApiServer(home, folder, config=config).start()
        try:
            with Chromium() as page:
                studio = Studio(page, server.url, shots=gallery)
                return steps(studio, keys, text)
        finally:
            server.stop()


def steps(studio: Studio, keys, text: str) -> dict[str, float]:
    began = time.monotonic()
    step = time.monotonic()
    studio.go("/")
    studio.shot("sign-in")
    studio.sign_in(keys.editor)
    studio.timed("sign in", step)
    studio.shot("home")

    step = time.monotonic()
    studio.go("/studio/videos/new")
    studio.fill_form("#new-video", {"avatar_id": REVIEWED_AVATAR, "language": ["en"]})
    studio.fill_form("#new-video", {"text": text})
    studio.page.wait_for("!!document.querySelector('#checks li, #checks .ok, #checks .error')", timeout=10)
    studio.shot("new-video")
    job = studio.new_video(text, REVIEWED_AVATAR)[0]
    studio.timed("write and submit", step)

    step = time.monotonic()
    # the jobs page's picture mid-render: once the live progress shows frame counts (or the job ended)
    studio.page.wait_for(
        "(function(){const r = document.querySelector('tr[data-job-id]'); if (!r) return false;"
        " const s = r.querySelector('[data-field=status]').textContent.trim();"
        " return r.querySelector('[data-field=frames]').textContent.trim() !== ''"
        " || !['queued', 'running'].includes(s);})()",
        timeout=300,
    )
    studio.shot("jobs")
    states = studio.wait_for_jobs([job], timeout=600)
    if states[job] != "succeeded":
        raise SystemExit(f"the render did not succeed: {states}")
    studio.timed("render (to held for review)", step)
    studio.shot("jobs-done")
    studio.go(f"/studio/jobs/{job}")
    studio.shot("job")

    step = time.monotonic()
    studio.sign_out()
    studio.sign_in(keys.reviewer)
    (review,) = studio.pending_reviews()
    studio.shot("reviews")
    studio.go(f"/studio/reviews/{review}")
    studio.play(captions=False)
    studio.shot("review")
    studio.decide(review, "approve", "Checked the rate against the product sheet.")
    studio.shot("reviews-decided")
    studio.timed("review and approve", step)

    step = time.monotonic()
    studio.sign_out()
    studio.sign_in(keys.editor)
    studio.go(f"/studio/videos/{job}")
    played = studio.play()
    if played.get("ready", 0) < 2 or not played.get("cues"):
        raise SystemExit(f"the video page did not play the video with captions: {played}")
    studio.shot("video")
    got = studio.download("MP4")
    if got.get("status") != 200 or got.get("head", "")[8:16] != "66747970":  # ....ftyp
        raise SystemExit(f"the MP4 download failed: {got}")
    size = got["bytes"]
    studio.timed("open, play and download", step)
    downloaded = time.monotonic()
    studio.timings["downloaded MP4 bytes"] = float(size)

    studio.go("/studio/library")
    studio.shot("library")
    # wall clock from the sign-in page to the MP4's last byte (the screenshots in between included)
    studio.timings["sign-in to downloaded video"] = round(downloaded - began, 2)
    studio.timings["whole walkthrough"] = round(time.monotonic() - began, 2)
    return studio.timings


def shrink(gallery: Path) -> None:
    """Re-save the screenshots with a 256-colour palette (no dithering): a third of the size in the
    repository, and the pages are flat colours (the video frames show some banding)."""
    from PIL import Image

    for path in sorted(gallery.glob("studio-*.png")):
        with Image.open(path) as image:
            small = image.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
        small.save(path, optimize=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--text", default=TEXT, help="what the video says")
    parser.add_argument("--small", action="store_true", help="render at 640x360 (faster) instead of the default size")
    parser.add_argument("--gallery", type=Path, default=REPO / "docs" / "gallery", help="where screenshots go")
    parser.add_argument("--no-shots", action="store_true", help="take no screenshots")
    parser.add_argument("--full-colour", action="store_true", help="keep the screenshots in full colour (larger)")
    parser.add_argument("--json", action="store_true", help="print the timings as JSON")
    args = parser.parse_args()
    timings = walk(args.text, args.small, None if args.no_shots else args.gallery)
    if not args.no_shots and not args.full_colour:
        shrink(args.gallery)
    if args.json:
        print(json.dumps(timings, indent=2))
    else:
        for name, seconds in timings.items():
            print(f"{name:32s} {seconds:8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
