"""Real-ESRGAN x4plus (real weights, opt-in) on this CPU: ms per tile, per face crop and per frame
of the frame_enhancer on a real render's frames, each next to cv2.resize INTER_CUBIC of the same
input timed in the same run, the seam error of tiling, and before/after crops to look at.

The input: `--frames` consecutive frames of a render (`--video`), the square around the face
(twice the face box) resized to `--work` pixels; the frame_enhancer enhances it ×4. "whole frame"
is the processor's `prepare` (every tile: an idle loop's changing base), "per frame" its
`process_frame` with the mouth-and-jaw rectangle as dirty (what the reenactor changes).
`--engine N`: instead, the whole engine for N frames of the sample avatar (its 512² work image,
a mouth opening and closing) with `frame_enhancer: real_esrgan_x4plus` in place of the upscaler,
against the default chain on the same track in the same run: the first frame (the base's every
tile) and the mean of the later ones (the reenactor's dirty tiles).
Needs `dhf models provision real_esrgan_x4plus`. Usage (2 shared cores: run it niced):
    nice .venv/bin/python scripts/bench_esrgan.py --video render.mp4 [--work 128] [--tile 96] [--out DIR]
    nice .venv/bin/python scripts/bench_esrgan.py --engine 3 [--out DIR]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

from avatars.library import AvatarLibrary  # noqa: E402
from config import load_settings  # noqa: E402
from driver_synth.track import MotionTrack  # noqa: E402
from fusion.engine import FusionEngine, RenderOptions  # noqa: E402
from fusion.processors.base import FrameContext, ProcessorSetup  # noqa: E402
from fusion.processors.frame_enhancer import FrameEnhancer, FrameEnhancerOptions, from_model, to_model  # noqa: E402
from pipeline import stages  # noqa: E402
from vision.analysis import FaceAnalyser  # noqa: E402
from vision.models import ModelRegistry  # noqa: E402
from vision.providers import ProviderChoice  # noqa: E402

MODEL = "real_esrgan_x4plus"


def timed(step, repeats: int) -> float:
    """Mean ms of `step()` over `repeats` runs after one warm-up run."""
    step()
    start = time.perf_counter()
    for _ in range(repeats):
        step()
    return 1000 * (time.perf_counter() - start) / repeats


def box(points: np.ndarray, pad: float, limit: int) -> tuple[int, int, int, int]:
    x0, y0 = points.min(0)
    x1, y1 = points.max(0)
    dx, dy = (x1 - x0) * pad, (y1 - y0) * pad
    return (max(int(x0 - dx), 0), max(int(y0 - dy), 0), min(int(x1 + dx) + 1, limit), min(int(y1 + dy) + 1, limit))


def render_frames(video: Path, start_s: float, count: int) -> list[np.ndarray]:
    with tempfile.TemporaryDirectory() as folder:
        pattern = str(Path(folder) / "f%03d.png")
        command = ["ffmpeg", "-v", "error", "-ss", str(start_s), "-i", str(video), "-frames:v", str(count), pattern]
        subprocess.run(command, check=True)
        return [cv2.imread(str(path)) for path in sorted(Path(folder).glob("f*.png"))]


def engine_run(count: int, out: Path | None) -> None:
    """The engine per frame with the x4plus frame_enhancer vs the default chain (same track, same run)."""
    base = load_settings().with_section("video", width=512, height=512)
    avatar = AvatarLibrary.from_settings(base.paths).get("sample")
    analysis = stages.avatar_stage(avatar, base)
    chain = ("reenactor", "color_matcher", "frame_enhancer", "compositor")
    enhanced = base.with_section("fusion", processors=chain, frame_enhancer={"model": MODEL})
    track = MotionTrack.from_channels(25, {"jaw_open": 0.5 + 0.5 * np.sin(np.arange(count) * 1.3)})
    print(f"engine, 512×512 output, sample avatar (work {analysis.work_image_and_landmarks(avatar)[0].shape[0]}²), "
          f"{count} frames, onnxruntime CPU, fusion.threads {base.fusion.threads}")  # fmt: skip
    shots = {}
    for label, settings in (("default chain (upscaler)", base), ("frame_enhancer real_esrgan_x4plus", enhanced)):
        engine = FusionEngine.for_avatar(stages.avatar_look(avatar, analysis), settings, RenderOptions(1))
        times, last = [], time.perf_counter()
        for frame in engine.frames(track):
            now = time.perf_counter()
            times.append(1000 * (now - last))
            shots.setdefault(label, []).append(frame.copy())
            last = time.perf_counter()
        engine.close()
        later = np.mean(times[1:]) if len(times) > 1 else float("nan")
        print(f"| {label} | first frame {times[0]:.0f} ms | later frames {later:.0f} ms/frame |")
    if out:
        out.mkdir(parents=True, exist_ok=True)
        for index, (plain, fancy) in enumerate(zip(*shots.values(), strict=True)):
            cv2.imwrite(str(out / f"engine{index}_upscaler_vs_x4plus.png"), np.hstack([plain, fancy]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, help="a render (MP4) whose face to enhance")
    parser.add_argument("--engine", type=int, default=0, help="run the whole engine for this many frames instead")
    parser.add_argument("--at", type=float, default=1.0, help="time of the first frame, seconds")
    parser.add_argument("--frames", type=int, default=3)
    parser.add_argument("--work", type=int, default=128, help="side of the frame_enhancer's input, pixels")
    parser.add_argument("--tile", type=int, default=96)
    parser.add_argument("--overlap", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime threads (fusion.threads; default 1)")
    parser.add_argument("--out", type=Path, default=None, help="write before/after PNGs here")
    args = parser.parse_args()
    settings = load_settings()
    registry = ModelRegistry(settings.paths.models)
    registry.path(MODEL)  # one line naming `dhf models provision real_esrgan_x4plus` when absent
    if args.engine:
        return engine_run(args.engine, args.out)
    if args.video is None:
        parser.error("give --video RENDER.mp4 (or --engine N)")
    analyser = FaceAnalyser(registry)
    frames = render_frames(args.video, args.at, args.frames)
    face = analyser.single_face(frames[0]).landmarks[:, :2]
    centre, half = face.mean(0), (face.max(0) - face.min(0)).max()  # square: twice the face box
    x0, y0 = (centre - half).round().astype(int)
    side = int(2 * half)
    scale = args.work / side
    works = [cv2.resize(f[y0 : y0 + side, x0 : x0 + side], (args.work, args.work), interpolation=cv2.INTER_AREA)
             for f in frames]  # fmt: skip
    lm = (face - [x0, y0]) * scale
    setup = ProcessorSetup(works[0], lm, 25, registry, ProviderChoice(requested=("cpu",), threads=args.threads))
    session = setup.session(MODEL)
    rows: list[tuple[str, float, float]] = []

    def model_vs_cubic(label: str, image: np.ndarray) -> np.ndarray:
        x = to_model(image)
        ms = timed(lambda: session.run(None, {"input": x}), 1)
        cubic = timed(lambda: cv2.resize(image, None, fx=4, fy=4, interpolation=cv2.INTER_CUBIC), 50)
        rows.append((label, ms, cubic))
        return from_model(session.run(None, {"input": x})[0])

    mouth = lm[[13, 14, 61, 291]].mean(0).round().astype(int)
    model_vs_cubic(
        "64×64 tile (mouth), model alone", works[0][mouth[1] - 32 : mouth[1] + 32, mouth[0] - 32 : mouth[0] + 32]
    )
    faces = box(face, 0.05, frames[0].shape[0])
    crop = cv2.resize(frames[0][faces[1] : faces[3], faces[0] : faces[2]], (128, 128), interpolation=cv2.INTER_AREA)
    enhanced_face = model_vs_cubic("face crop 128×128 → 512×512, model alone", crop)

    w = args.work
    enhancer = FrameEnhancer(FrameEnhancerOptions(model=MODEL, tile=args.tile, overlap=args.overlap), w * 4)
    start = time.perf_counter()
    base = enhancer.prepare(works[0], setup)
    whole = 1000 * (time.perf_counter() - start)
    cubic_whole = timed(lambda: cv2.resize(works[0], (w * 4, w * 4), interpolation=cv2.INTER_CUBIC), 50)
    grid = f"{enhancer.rows}×{enhancer.columns} tiles of {enhancer.tile}²"
    rows.append((f"whole {w}×{w} frame → {w * 4}² ({grid})", whole, cubic_whole))
    lower = box(lm[[61, 291, 17, 152, 172, 397, 0]], 0.1, w)  # mouth and jaw: the reenactor's dirty area
    tiles = len(enhancer.tiles_reaching(lower))
    outputs = [base.copy()]
    start = time.perf_counter()
    for index, work in enumerate(works[1:], start=1):
        outputs.append(enhancer.process_frame(work, FrameContext(index, None, dirty=lower)).copy())
    per_frame = 1000 * (time.perf_counter() - start) / max(len(works) - 1, 1)
    rows.append((f"per frame, dirty mouth+jaw {lower} ({tiles} of {enhancer.rows * enhancer.columns} tiles)",
                 per_frame, cubic_whole))  # fmt: skip
    # Tiles vs one pass over the whole frame: the network sees far beyond a tile's overlap, so tiling
    # only approximates one pass; this is how far.
    single = from_model(session.run(None, {"input": to_model(works[-1])})[0]).astype(np.int16)
    seam = np.abs(single - enhancer.enhanced[: w * 4, : w * 4].astype(np.int16))
    enhancer.close()

    print(f"{args.video.name}: face square {side}² at ({x0},{y0}) → {w}² → {w * 4}²; onnxruntime CPU, "
          f"{args.threads} thread(s)")  # fmt: skip
    print("| step (Real-ESRGAN x4plus, CPU) | model ms | INTER_CUBIC ms | ratio |\n|---|---:|---:|---:|")
    for label, ms, cubic in rows:
        print(f"| {label} | {ms:.0f} | {cubic:.2f} | {ms / cubic:.0f}× |")
    edge = args.overlap * 4  # the frame's own border: tiles mirror it, one pass zero-pads it
    inner = seam[edge:-edge, edge:-edge]
    for label, part in (("whole frame", seam), (f"inside (without the outer {edge} px)", inner)):
        print(f"tiled ({enhancer.tile}/{args.overlap}) vs one pass, {label}: max {part.max()}, "
              f"mean {part.mean():.2f} (0-255), pixels off by > 8: {np.mean(part.max(2) > 8):.2%}")  # fmt: skip
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        heat = cv2.applyColorMap(np.clip(seam.max(2) * 8, 0, 255).astype(np.uint8), cv2.COLORMAP_INFERNO)
        cv2.imwrite(str(args.out / "tiled_vs_one_pass_x8.png"), heat)
        cubic_face = cv2.resize(crop, None, fx=4, fy=4, interpolation=cv2.INTER_CUBIC)
        cv2.imwrite(str(args.out / "face_cubic_vs_x4plus.png"), np.hstack([cubic_face, enhanced_face]))
        for index, (work, out) in enumerate(zip(works, outputs, strict=True)):
            cubic = cv2.resize(work, (w * 4, w * 4), interpolation=cv2.INTER_CUBIC)
            cv2.imwrite(str(args.out / f"frame{index}_cubic_vs_x4plus.png"), np.hstack([cubic, out]))


if __name__ == "__main__":
    main()
