"""Mouth-bank benchmark: a personal avatar's render against an ffmpeg-only 1080p encode of the same length.

A speaking recording is generated (tests/speaking_recording.py: the sample portrait driven by real
espeak-ng speech, `--seconds` long by repeating the script), enrolled with `--speaking` (length and
face-size limits lowered for the generated clip, every other check at its default), evaluated on
its held-out fifth, and then each sentence is rendered twice in one fresh DHF home: with the
personal avatar (reenactor → mouth_bank → …) and with the bundled sample (painted mouth), each
against `ffmpeg -f lavfi -i testsrc2 … -preset veryfast` of the same duration, measured in the same
run (ratios, not seconds, compare across machines). Usage:
    .venv/bin/python scripts/bench_mouth_bank.py [--count 3] [--seconds 60] [--out bench-out]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "scripts")]

from bench_render import SENTENCES, ffmpeg_reference  # noqa: E402

from avatars.library import AvatarLibrary  # noqa: E402
from avatars.speaking import enroll_speaking  # noqa: E402
from config import load_settings  # noqa: E402
from governance.audit import AuditLog  # noqa: E402
from governance.library_record import recorded  # noqa: E402
from pipeline.avatar_evaluation import evaluate_avatar  # noqa: E402
from pipeline.request import RenderRequest  # noqa: E402
from pipeline.run import render_video  # noqa: E402
from tests.speaking_recording import SCRIPT, make_recording  # noqa: E402
from tests.test_personal_avatars import write_license  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=60.0, help="approximate recording length")
    parser.add_argument("--out", type=Path, default=Path("bench-out"))
    args = parser.parse_args()
    provisioned = load_settings().paths.models
    home = Path(tempfile.mkdtemp(prefix="dhf-bench-bank-"))
    (home / "models").symlink_to(provisioned, target_is_directory=True)
    limits = home / "limits.yaml"
    lowered = {"enrollment": {"min_face_px": 120, "speaking": {"min_seconds": 8, "min_face_px": 120}}}
    limits.write_text(yaml.safe_dump(lowered))
    settings = load_settings(limits, home=home)
    args.out.mkdir(exist_ok=True)
    start = time.perf_counter()
    repeats = max(1, round(args.seconds / 9.3))  # the script is ~9.3 s of speech
    recording = make_recording(settings, args.out / "recording", text=SCRIPT, repeats=repeats)
    generated = time.perf_counter() - start
    start = time.perf_counter()
    library = AvatarLibrary.from_settings(settings.paths)
    license_path = write_license(home / "lic", "bench")
    result = recorded(
        AuditLog(settings.paths.audit_db), "avatar.add", "bench", "bench",
        lambda: enroll_speaking(library, "bench", license_path, settings, "bench", recording.path),
        lambda done: done.avatar,
    )  # fmt: skip
    enrolled = time.perf_counter() - start
    checks = json.loads((result.avatar.folder / "checks.json").read_text())
    start = time.perf_counter()
    evaluation = evaluate_avatar(result.avatar, settings)
    evaluated = time.perf_counter() - start
    print(json.dumps({
        "recording_s": checks["recording_seconds"], "generate_s": round(generated, 1), "enroll_s": round(enrolled, 1),
        "evaluate_s": round(evaluated, 1), "units": checks["mouth_units"],
        "bank_mb_per_minute": checks["mouth_bank_mb_per_minute"], "evaluation": evaluation.as_dict(),
    }), flush=True)  # fmt: skip
    rows = []
    for index, text in enumerate(SENTENCES[: args.count]):
        row: dict[str, object] = {"sentence": index}
        for avatar in ("bench", "sample"):
            target = args.out / f"bank-{avatar}-{index}.mp4"
            scope = {"channel": "web", "purpose": "customer-service"} if avatar == "bench" else {}
            request = RenderRequest(text=text, avatar_id=avatar, language="en", output=target, **scope)
            begin = time.perf_counter()
            rendered = render_video(request, settings)
            wall = time.perf_counter() - begin
            report = json.loads(rendered.report.read_text())
            duration = report["video"]["duration_s"]
            video = settings.video
            reference = ffmpeg_reference(duration, video.width, video.height, video.fps, args.out / "reference.mp4")
            row[avatar] = {
                "duration_s": duration,
                "render_s": round(wall, 2),
                "ffmpeg_ref_s": round(reference, 2),
                "ratio_vs_ffmpeg": round(wall / reference, 2),
                "processors": report["processors"],
                "process_ms_per_frame": report["process_ms_per_frame"],
            }
        rows.append(row)
        print(json.dumps(row), flush=True)
    for avatar in ("bench", "sample"):
        render_s = sum(r[avatar]["render_s"] for r in rows)
        reference_s = sum(r[avatar]["ffmpeg_ref_s"] for r in rows)
        print(f"{avatar}: render {render_s:.1f} s, ffmpeg {reference_s:.1f} s, ratio {render_s / reference_s:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
