"""Mouth-bank benchmark: a personal avatar's render against an ffmpeg-only 1080p encode of the same length.

A speaking recording is generated (tests/speaking_recording.py: the sample portrait driven by real
espeak-ng speech, `--seconds` long by repeating the script), enrolled with `--speaking` (length and
face-size limits lowered for the generated clip, every other check at its default), evaluated on
its held-out fifth. Then each text (the first `--count` bench sentences, ~9 s each, and one long
text of about `--long` seconds) is rendered with the personal avatar (reenactor → mouth_bank → …,
idle-loop base) and with the bundled sample (painted mouth, photo base), each against
`ffmpeg -f lavfi -i testsrc2 … -preset veryfast` of the same duration, measured in the same run
(ratios, not seconds, compare across machines). Two figures per render:
- `render`: the render stage alone (frames made, encoded, sealed), run a second time without the
  quality gate's monitor (for the measurement only: the product has no such switch);
- `whole`: `render_video` as a user gets it, to the published file with the quality gate, but with
  the text's speech already synthesised (`speech_s`, the same for both avatars, is printed apart)
  and the personal avatar's one-time preparation done (`avatar_preparation_s`).
`--reuse HOME` skips the recording, enrollment and evaluation and renders with the avatar enrolled
in HOME by an earlier run. Usage:
    .venv/bin/python scripts/bench_mouth_bank.py [--count 3] [--long 60] [--seconds 60] [--out bench-out]
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

from bench_render import SENTENCES, ffmpeg_reference, render_without_gate  # noqa: E402

from avatars.library import AvatarLibrary  # noqa: E402
from avatars.speaking import enroll_speaking  # noqa: E402
from config import load_settings  # noqa: E402
from governance.audit import AuditLog  # noqa: E402
from governance.library_record import recorded  # noqa: E402
from pipeline import stages  # noqa: E402
from pipeline.avatar_evaluation import evaluate_avatar  # noqa: E402
from pipeline.request import RenderRequest, validate_request  # noqa: E402
from pipeline.run import render_video  # noqa: E402
from quality.errors import QualityGateError  # noqa: E402
from tests.speaking_recording import SCRIPT, make_recording  # noqa: E402
from tests.test_personal_avatars import write_license  # noqa: E402


def enroll(settings, home: Path, out: Path, seconds: float) -> None:
    """Generate, enroll and evaluate the personal avatar 'bench' (printed as one JSON line)."""
    start = time.perf_counter()
    repeats = max(1, round(seconds / 9.3))  # the script is ~9.3 s of speech
    recording = make_recording(settings, out / "recording", text=SCRIPT, repeats=repeats)
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
        "home": str(home), "recording_s": checks["recording_seconds"], "generate_s": round(generated, 1),
        "enroll_s": round(enrolled, 1), "evaluate_s": round(evaluated, 1), "units": checks["mouth_units"],
        "bank_mb_per_minute": checks["mouth_bank_mb_per_minute"], "evaluation": evaluation.as_dict(),
    }), flush=True)  # fmt: skip


def long_text(seconds: float) -> str:
    """Bench sentences joined to about `seconds` of speech (~9 s each), below the chunking threshold."""
    return " ".join(SENTENCES[i % len(SENTENCES)] for i in range(max(1, round(seconds / 9.0))))


def request_for(text: str, avatar: str, out: Path, name: str) -> RenderRequest:
    scope = {"channel": "web", "purpose": "customer-service"} if avatar == "bench" else {}
    return RenderRequest(text=text, avatar_id=avatar, language="en", output=out / f"bank-{avatar}-{name}.mp4", **scope)


def warm(text: str, settings, out: Path, name: str) -> float:
    """Speech, visemes and motion for `text` (the same for both avatars), so neither avatar's
    `whole` figure carries the text-to-speech time; returns that time."""
    begin = time.perf_counter()
    validated = validate_request(request_for(text, "sample", out, name), settings)
    speech = stages.speech_stage(validated, settings)
    stages.driver_stage(stages.viseme_stage(speech, settings), speech, settings)
    return time.perf_counter() - begin


def prepare_avatar(settings) -> float:
    """The personal avatar's one-time work before its first render (analysis, idle-loop preparation)."""
    begin = time.perf_counter()
    avatar = AvatarLibrary.from_settings(settings.paths).get("bench")
    analysis = stages.avatar_stage(avatar, settings)
    stages.idle_bases(avatar, analysis, settings.video.fps, 1, settings.paths.cache)
    return time.perf_counter() - begin


def measure(text: str, avatar: str, settings, out: Path, name: str) -> dict[str, object]:
    request = request_for(text, avatar, out, name)
    begin = time.perf_counter()
    try:
        report_path = render_video(request, settings).report
    except QualityGateError as rejected:  # the work was all done: the time counts, the verdict is reported
        report_path = rejected.report_path
    whole = time.perf_counter() - begin
    render = render_without_gate(request, settings)  # speech, driver and analysis now cached
    report = json.loads(report_path.read_text())
    duration = report["video"]["duration_s"]
    video = settings.video
    reference = ffmpeg_reference(duration, video.width, video.height, video.fps, out / "reference.mp4")
    return {
        "duration_s": duration,
        "whole_s": round(whole, 2),
        "render_s": round(render, 2),
        "ffmpeg_ref_s": round(reference, 2),
        "whole_ratio": round(whole / reference, 2),
        "render_ratio": round(render / reference, 2),
        "quality_passed": report["quality"]["passed"],
        "quality_failures": report["quality"].get("failures", []),
        "process_ms_per_frame": report["process_ms_per_frame"],
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=3, help="short sentences (~9 s each)")
    parser.add_argument("--long", type=float, default=60.0, help="seconds of the long text (0: none)")
    parser.add_argument("--seconds", type=float, default=60.0, help="approximate recording length")
    parser.add_argument("--out", type=Path, default=Path("bench-out"))
    parser.add_argument("--reuse", type=Path, help="a DHF home where an earlier run enrolled 'bench'")
    args = parser.parse_args()
    args.out.mkdir(exist_ok=True)
    if args.reuse is not None:
        home = args.reuse
        settings = load_settings(home / "limits.yaml", home=home)
    else:
        provisioned = load_settings().paths.models
        home = Path(tempfile.mkdtemp(prefix="dhf-bench-bank-"))
        (home / "models").symlink_to(provisioned, target_is_directory=True)
        limits = home / "limits.yaml"
        lowered = {"enrollment": {"min_face_px": 120, "speaking": {"min_seconds": 8, "min_face_px": 120}}}
        limits.write_text(yaml.safe_dump(lowered))
        settings = load_settings(limits, home=home)
        enroll(settings, home, args.out, args.seconds)
    texts = [(f"s{i}", text) for i, text in enumerate(SENTENCES[: args.count])]
    if args.long > 0:
        texts.append(("long", long_text(args.long)))
    print(json.dumps({"avatar_preparation_s": round(prepare_avatar(settings), 2)}), flush=True)
    rows = []
    for name, text in texts:
        row: dict[str, object] = {"text": name, "speech_s": round(warm(text, settings, args.out, name), 2)}
        for avatar in ("bench", "sample"):
            row[avatar] = measure(text, avatar, settings, args.out, name)
        rows.append(row)
        print(json.dumps(row), flush=True)
    for group, names in (("short", [n for n, _ in texts if n != "long"]), ("long", ["long"])):
        chosen = [r for r in rows if r["text"] in names]
        if not chosen:
            continue
        keys = ("duration_s", "whole_s", "render_s", "ffmpeg_ref_s")
        for avatar in ("bench", "sample"):
            total = {k: round(sum(r[avatar][k] for r in chosen), 2) for k in keys}
            total["render_ratio"] = round(total["render_s"] / total["ffmpeg_ref_s"], 2)
            total["whole_ratio"] = round(total["whole_s"] / total["ffmpeg_ref_s"], 2)
            print(json.dumps({"summary": group, "avatar": avatar, **total}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
